#pragma once
// Graphite plaintext parser: "path value [timestamp]" separated by spaces or
// tabs, with tags as "path;tag=value;tag2=value2" (Graphite's tag rules:
// non-empty names without ;!^=, non-empty values not starting with '~').
// The timestamp is in seconds (a fraction is allowed); missing or -1 means
// "when received". NaN values are dropped (kNonFiniteValue), as carbon does.
// Every sample is a gauge. One GraphiteParser per thread; parse_* never
// allocate, log or throw.

#include <array>
#include <string_view>

#include "ringpipe/ingest/parse.hpp"

namespace ringpipe::ingest {

struct GraphiteOptions {
  bool reject_infinite = false;  // +/-Inf values: kNonFiniteValue
};

class GraphiteParser {
 public:
  explicit GraphiteParser(const GraphiteOptions& options = {}) noexcept : options_(options) {}

  void parse_packet(std::string_view packet, SampleOutput& out, ParseCounters& counters) noexcept;
  void parse_line(std::string_view line, SampleOutput& out, ParseCounters& counters) noexcept;

 private:
  GraphiteOptions options_;
  std::array<sample::Tag, kMaxTags> tags_{};
};

}  // namespace ringpipe::ingest
