#pragma once
// RemoteWriteDecoder: one Prometheus remote_write 1.0 request body (a snappy
// block holding a prompb WriteRequest) into samples. decode() uncompresses the
// body into one buffer and checks the protobuf wire format in place, counting
// series, labels and samples against the limits; convert() then reads the
// buffer again and writes every valid series' samples as gauge sets, and
// its native histogram samples as kNativeHistogram entries with their own
// timestamps, to a SampleOutput, counting each refused series by reason. The metadata of
// each request (type, HELP, UNIT per family) is kept for the requests that
// follow and marks every sample of its family. No message objects
// are built, so memory is the uncompressed buffer (at most
// max_uncompressed_bytes), whatever the request holds; release() gives a
// buffer over 1 MiB back. The two steps are apart so that a request that does
// not decode never claims ring space. One decoder per thread; snappy stays
// inside the .cpp. Never throws.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "ringpipe/ingest/parse.hpp"

namespace ringpipe::ingest {

struct RemoteWriteLimits {
  std::size_t max_body_bytes = 10u << 20;          // compressed request body
  std::size_t max_uncompressed_bytes = 80u << 20;  // what the snappy block claims to hold
  std::uint32_t max_labels = 64;                   // per series, __name__ not counted; at most kMaxTags
  std::uint64_t max_series = 100'000;              // TimeSeries per request
  std::uint64_t max_labels_total = 2'000'000;      // Label fields per request, all series together
  std::uint64_t max_samples = 1'000'000;           // Samples per request
  std::size_t max_metadata = 100'000;              // metric families whose metadata is kept
};

// What decode() found wrong with a whole request; kNone = decoded.
// kTooLarge: bytes over a limit; kTooManyObjects: series, labels or samples.
enum class DecodeStatus : std::uint8_t { kNone, kBadSnappy, kBadProtobuf, kTooLarge, kTooManyObjects };

// What convert() did with one request.
struct ConvertResult {
  std::uint64_t series = 0;                      // in the request
  std::uint64_t series_rejected = 0;             // refused whole, counted by reason
  ParseError first_reason = ParseError::kCount;  // of the first refused series
};

class RemoteWriteDecoder {
 public:
  explicit RemoteWriteDecoder(const RemoteWriteLimits& limits);
  ~RemoteWriteDecoder();
  RemoteWriteDecoder(const RemoteWriteDecoder&) = delete;
  RemoteWriteDecoder& operator=(const RemoteWriteDecoder&) = delete;

  // Uncompresses and checks `body`; a failure is counted in `counters`
  // (bad_snappy, bad_protobuf, body_too_large for bytes or objects over a limit).
  [[nodiscard]] DecodeStatus decode(std::string_view body, ParseCounters& counters) noexcept;
  // The last decoded request into `out`, each sample with its family's type,
  // HELP and UNIT from the metadata received so far (untyped without any):
  // series count as lines, samples as
  // samples; NaN values (Prometheus' staleness markers among them) are
  // dropped as non_finite_value, timestamps outside (0, 2^63 ns) as
  // malformed_timestamp.
  ConvertResult convert(SampleOutput& out, ParseCounters& counters) noexcept;
  // Forgets the last request and gives back a buffer grown over 1 MiB.
  void release() noexcept;
  // Samples the last decoded request carries (valid or not).
  [[nodiscard]] std::uint64_t sample_count() const noexcept;
  // At least the sample-batch bytes convert() will write (the claim to ask for).
  [[nodiscard]] std::size_t batch_bytes_bound() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

[[nodiscard]] std::string_view decode_status_name(DecodeStatus s) noexcept;

}  // namespace ringpipe::ingest
