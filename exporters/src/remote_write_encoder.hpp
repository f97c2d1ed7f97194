#pragma once
// RequestBuilder: turns metric-batch series entries into a remote_write 1.0
// WriteRequest (one TimeSeries per derived series: summaries and histograms
// become _sum/_count plus quantile/_bucket series, as Prometheus names them;
// a histogram with native buckets also one Histogram sample under its own name),
// with each family's TYPE, HELP and UNIT as MetricMetadata, then serializes
// and snappy-compresses it. Single-thread object.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ringpipe/common/result.hpp"
#include "ringpipe/metric/metric_record.hpp"

namespace prometheus {
class WriteRequest;
}

namespace ringpipe::exporters {

class RequestBuilder {
 public:
  // A family's metadata goes into the first request that carries one of its
  // samples, then again at most once per `metadata_interval` (Prometheus'
  // metadata_config.send_interval, 1m); 0: in every request with its samples.
  explicit RequestBuilder(std::chrono::milliseconds metadata_interval = std::chrono::minutes(1));
  ~RequestBuilder();
  RequestBuilder(RequestBuilder&&) noexcept;
  RequestBuilder& operator=(RequestBuilder&&) noexcept;

  // Adds every sample of one kSeries entry at `timestamp_ms`, or at its own
  // time with kEntryTimestamp (then several samples of one series in a
  // request share its TimeSeries, ordered by time); returns how many.
  std::size_t add(const metric::MetricEntryView& e, std::int64_t timestamp_ms);
  [[nodiscard]] std::size_t samples() const noexcept { return samples_; }
  [[nodiscard]] bool empty() const noexcept { return samples_ == 0; }
  // Serialized, snappy-compressed body; the builder is empty afterwards.
  [[nodiscard]] Result<std::string> take_compressed();
  [[nodiscard]] const prometheus::WriteRequest& message() const noexcept { return *req_; }

  struct LabelRef {
    std::string_view name;
    std::string_view value;
  };

 private:
  std::size_t add_samples(const metric::MetricEntryView& e, std::int64_t timestamp_ms);
  std::size_t add_stamped(const metric::MetricEntryView& e, std::vector<LabelRef>& labels);
  void add_metadata(const metric::MetricEntryView& e);

  std::unique_ptr<prometheus::WriteRequest> req_;
  std::size_t samples_ = 0;
  std::unordered_map<std::uint64_t, int> stamped_;  // series key -> its TimeSeries in req_
  bool unordered_ = false;                          // a series got a sample older than its last
  struct MetadataSent {
    std::uint64_t request = 0;  // request_ when it was last added
    std::chrono::steady_clock::time_point at;
  };
  std::chrono::milliseconds metadata_interval_;
  std::uint64_t request_ = 1;                                    // counts take_compressed() calls
  std::unordered_map<std::string, MetadataSent> metadata_sent_;  // by family name
};

// Shortest text that reads back as the same double; "+Inf", "-Inf", "NaN".
[[nodiscard]] std::string format_double(double v);

}  // namespace ringpipe::exporters
