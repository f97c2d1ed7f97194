// remote_write_bench: the remote_write receiver's decoder on one core —
// snappy uncompress + protobuf parse + conversion into real sample batches —
// beside two baselines over the same request bodies: snappy uncompress alone,
// and snappy uncompress + WriteRequest::ParseFromArray (the floor any
// protobuf receiver pays). Requests look like Prometheus' own (a sample per
// series, 6-8 labels each); figures are per request sample and per byte of
// compressed body. A second case sends native histogram samples instead (one
// per series, schema 3, 24 buckets in 3 spans, as Prometheus remote-writes a
// scraped native histogram), each carried as a kind-8 entry.
// Usage: remote_write_bench [--seconds S] [--series-per-request N]

#include <snappy.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "bench_util.hpp"
#include "remote.pb.h"
#include "remote_write_decoder.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace {

using namespace ringpipe;

// One request of `n` series shaped like a Prometheus scrape of an HTTP server.
// With `native`, each series carries a native histogram sample instead.
std::string make_request(int n, int seed, std::size_t* raw_bytes, bool native = false) {
  prometheus::WriteRequest req;
  static const char* kHandlers[] = {"/", "/api/v1/query", "/metrics", "/login", "/static", "/api/v1/write"};
  static const char* kCodes[] = {"200", "204", "302", "400", "404", "500"};
  for (int i = 0; i < n; ++i) {
    auto* ts = req.add_timeseries();
    auto label = [&](const std::string& k, const std::string& v) {
      auto* l = ts->add_labels();
      l->set_name(k);
      l->set_value(v);
    };
    const int s = seed * n + i;
    label("__name__", native       ? "http_request_duration_seconds"
                      : i % 3 == 0 ? "http_request_duration_seconds_bucket"
                                   : "http_requests_total");
    label("code", kCodes[s % 6]);
    label("handler", kHandlers[(s / 6) % 6]);
    label("instance", "10.0.0." + std::to_string(s % 200) + ":9100");
    label("job", "web");
    if (i % 3 == 0 && !native) label("le", std::to_string(0.005 * (1 << (s % 10))));
    label("method", s % 2 ? "GET" : "POST");
    if (native) {
      auto* h = ts->add_histograms();
      h->set_schema(3);
      h->set_zero_threshold(2.938735877055719e-39);
      h->set_zero_count_int(s % 3);
      std::int64_t total = s % 3, prev = 0;
      for (const int offset : {-60, 2, 5}) {  // 3 spans of 8 buckets
        auto* sp = h->add_positive_spans();
        sp->set_offset(offset);
        sp->set_length(8);
        for (int b = 0; b < 8; ++b) {
          const std::int64_t c = 1 + (s + b) % 17;
          h->add_positive_deltas(c - prev);
          prev = c;
          total += c;
        }
      }
      h->set_count_int(static_cast<std::uint64_t>(total));
      h->set_sum(0.01 * static_cast<double>(total));
      h->set_timestamp(1'700'000'000'000 + s);
      continue;
    }
    auto* smp = ts->add_samples();
    smp->set_value(1000.0 + s);
    smp->set_timestamp(1'700'000'000'000 + s);
  }
  std::string raw;
  req.SerializeToString(&raw);
  *raw_bytes = raw.size();
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

// Uncompresses one body into `buf`; its uncompressed size.
std::size_t uncompress(const std::string& body, std::string& buf) {
  std::size_t n = 0;
  snappy::GetUncompressedLength(body.data(), body.size(), &n);
  buf.resize(n);
  snappy::RawUncompress(body.data(), body.size(), buf.data());
  return n;
}

using bench::time_repeated;

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2;
  int per_request = 500;
  for (int i = 1; i < argc; ++i) {
    const std::string_view k = argv[i];
    if (k == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (k == "--series-per-request" && i + 1 < argc) {
      per_request = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--seconds S] [--series-per-request N]\n", argv[0]);
      return 2;
    }
  }
  constexpr int kRequests = 64;  // distinct bodies, cycled
  for (const bool native : {false, true}) {
    std::vector<std::string> bodies;
    std::size_t compressed = 0, raw = 0;
    for (int r = 0; r < kRequests; ++r) {
      std::size_t n = 0;
      bodies.push_back(make_request(per_request, r, &n, native));
      compressed += bodies.back().size();
      raw += n;
    }
    const double samples = static_cast<double>(per_request) * kRequests;
    std::printf(
        "%sremote_write decode, one core: %d requests of %d series (%s each), %.0f B compressed / %.0f B "
        "protobuf per request\n",
        native ? "\n" : "", kRequests, per_request, native ? "1 native histogram, 24 buckets" : "1 sample",
        static_cast<double>(compressed) / kRequests, static_cast<double>(raw) / kRequests);
    std::printf("  %-44s %12s %14s %12s\n", "", "samples/s", "MB/s (body)", "ns/sample");
    auto row = [&](const char* what, double t, long reps) {
      const double s = samples * static_cast<double>(reps) / t;
      std::printf("  %-44s %10.2f M %14.0f %12.1f\n", what, s / 1e6,
                  static_cast<double>(compressed) * static_cast<double>(reps) / t / 1e6, 1e9 / s);
    };
    long reps = 0;
    volatile std::size_t sink = 0;
    std::string buf;
    double t = time_repeated(
        seconds,
        [&] {
          for (const std::string& b : bodies) sink = sink + static_cast<unsigned char>(buf[uncompress(b, buf) / 2]);
        },
        reps);
    row("baseline: snappy uncompress", t, reps);
    prometheus::WriteRequest req;
    t = time_repeated(
        seconds,
        [&] {
          for (const std::string& b : bodies) {
            const std::size_t n = uncompress(b, buf);
            req.Clear();
            req.ParseFromArray(buf.data(), static_cast<int>(n));
            sink = sink + static_cast<std::size_t>(req.timeseries_size());
          }
        },
        reps);
    row("baseline: snappy + WriteRequest::ParseFromArray", t, reps);

    ingest::RemoteWriteDecoder decoder({});
    std::vector<std::byte> batch(16u << 20);
    sample::BatchWriter writer(batch, 1, 0);
    ingest::SampleOutput out(&writer);
    ingest::ParseCounters c;
    t = time_repeated(
        seconds,
        [&] {
          for (const std::string& b : bodies) {
            writer.reset(batch, 0);
            if (decoder.decode(b, c) == ingest::DecodeStatus::kNone) (void)decoder.convert(out, c);
          }
        },
        reps);
    row("RemoteWriteDecoder: decode + convert -> batch", t, reps);
    if (c.total_errors() != 0 || out.dropped() != 0 || out.too_large() != 0 ||
        out.written() != static_cast<std::uint64_t>(reps) * static_cast<std::uint64_t>(samples)) {
      std::printf("  (unexpected: %llu errors, %llu dropped, %llu written)\n",
                  static_cast<unsigned long long>(c.total_errors()), static_cast<unsigned long long>(out.dropped()),
                  static_cast<unsigned long long>(out.written()));
      return 1;
    }
  }
  return 0;
}
