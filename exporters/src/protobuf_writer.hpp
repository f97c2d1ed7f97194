#pragma once
// The protobuf exposition format: `application/vnd.google.protobuf;
// proto=io.prometheus.client.MetricFamily; encoding=delimited`, each
// MetricFamily (common/prompb/metrics.proto) prefixed by its length as a
// varint. Families come as prometheus-cpp's objects, native histograms
// beside them (prometheus-cpp has none). Plain functions; thread-safe.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <prometheus/metric_family.h>

namespace ringpipe::exporters::protobuf {

// The media type a scraper asks for, and the Content-Type of the answer.
inline constexpr std::string_view kContentType =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

// The native part of one histogram metric: the `metric`-th ClientMetric of its family.
struct NativeHistogram {
  std::size_t metric = 0;
  std::int32_t schema = 0;
  double zero_threshold = 0;
  double zero_count = 0;
  double count = 0;                                       // the histogram's count, as the series keeps it (a float)
  std::vector<std::pair<std::int32_t, double>> positive;  // key, count; keys increasing
  std::vector<std::pair<std::int32_t, double>> negative;
};
// By family name; each family's entries in increasing `metric` order.
using NativeIndex = std::unordered_map<std::string, std::vector<NativeHistogram>>;

// True when an Accept header prefers the delimited protobuf format to the
// text formats (a q value higher than any text format's, or equal and first).
[[nodiscard]] bool prefers_protobuf(std::string_view accept);

// Appends `families` (with `natives`) to `out`, delimited.
void append_families(std::string& out, const std::vector<prometheus::MetricFamily>& families,
                     const NativeIndex& natives);

}  // namespace ringpipe::exporters::protobuf
