#pragma once
// InfluxDB line protocol parser:
//   measurement[,tag=value...] field=value[,field=value...] [timestamp]
// with the protocol's escaping rules (\, \  \= \" and "..." strings), every
// field type (float, 12i, 12u, "string", t/true/F/FALSE...) and a timestamp
// precision. Each numeric field becomes one gauge sample named
// "<measurement>_<field>" carrying the line's tags; booleans become 1 and 0;
// string fields are skipped (counted in ParseCounters::skipped_fields). A line
// with any malformed part is dropped whole, as InfluxDB does.
// One InfluxParser per thread (it owns scratch space for unescaping, allocated
// once at construction); parse_* never allocate, log or throw.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "ringpipe/ingest/parse.hpp"

namespace ringpipe::ingest {

enum class Precision : std::uint8_t { kNanoseconds, kMicroseconds, kMilliseconds, kSeconds };

// Nanoseconds in one unit of `p`: what a timestamp of that precision is multiplied by.
[[nodiscard]] constexpr std::int64_t precision_factor(Precision p) noexcept {
  switch (p) {
    case Precision::kNanoseconds:
      return 1;
    case Precision::kMicroseconds:
      return 1'000;
    case Precision::kMilliseconds:
      return 1'000'000;
    case Precision::kSeconds:
      return 1'000'000'000;
  }
  return 1;
}

struct InfluxOptions {
  Precision precision = Precision::kNanoseconds;
  bool booleans_as_numbers = true;  // false: boolean fields are skipped like strings
};

// Most fields one line may have; a line with more is dropped (kTooManyFields).
inline constexpr std::size_t kMaxInfluxFields = 256;

class InfluxParser {
 public:
  explicit InfluxParser(const InfluxOptions& options = {});

  void parse_packet(std::string_view packet, SampleOutput& out, ParseCounters& counters) noexcept;
  void parse_line(std::string_view line, SampleOutput& out, ParseCounters& counters) noexcept;

 private:
  struct Field {
    std::string_view key;  // unescaped
    double value;
  };

  InfluxOptions options_;
  std::array<sample::Tag, kMaxTags> tags_{};
  std::unique_ptr<Field[]> fields_;
  std::unique_ptr<char[]> scratch_;  // unescaped keys and values; bounded by the line length
  std::size_t scratch_size_ = 0;
  std::unique_ptr<char[]> name_;  // "<measurement>_<field>"
};

}  // namespace ringpipe::ingest
