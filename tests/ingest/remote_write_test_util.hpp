#pragma once
// Test helpers for the remote_write receiver: build prompb WriteRequests,
// snappy them, and POST them over loopback with the shared net::HttpClient.

#include <snappy.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "remote.pb.h"
#include "ringpipe/net/http_client.hpp"

namespace ringpipe::ingest::testing {

using Labels = std::vector<std::pair<std::string, std::string>>;
using Points = std::vector<std::pair<double, std::int64_t>>;  // value, timestamp ms

inline void add_series(prometheus::WriteRequest& req, const Labels& labels, const Points& points) {
  auto* ts = req.add_timeseries();
  for (const auto& [k, v] : labels) {
    auto* l = ts->add_labels();
    l->set_name(k);
    l->set_value(v);
  }
  for (const auto& [v, t] : points) {
    auto* s = ts->add_samples();
    s->set_value(v);
    s->set_timestamp(t);
  }
}

inline std::string encode(const prometheus::WriteRequest& req) {
  std::string raw;
  req.SerializeToString(&raw);
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

inline std::string snappy_of(const std::string& raw) {
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

// A remote_write POST as Prometheus sends it; status 0 = no answer.
inline net::HttpResponse post(net::HttpClient& c, const std::string& body, const std::string& path = "/api/v1/write",
                              const std::string& method = "POST",
                              net::HttpHeaders headers = {{"Content-Encoding", "snappy"},
                                                          {"Content-Type", "application/x-protobuf"},
                                                          {"X-Prometheus-Remote-Write-Version", "0.1.0"}}) {
  auto r = c.request(method, path, headers, body, std::chrono::seconds(10));
  if (r) return *r;
  net::HttpResponse failed;  // status 0: no answer; the body says why
  failed.body = r.error().message();
  return failed;
}

}  // namespace ringpipe::ingest::testing
