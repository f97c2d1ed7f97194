#pragma once
// StatsD / DogStatsD line parser with the semantics of Prometheus'
// statsd_exporter (pkg/line): name:value|type[|@rate][|#tags][|c:id][|T<secs>],
// multi-value lines (a:1:2|ms), several samples per line (a:1|c:2|g) when no
// DogStatsD tags are present, and four switchable tag styles. Differences
// from statsd_exporter, on purpose: sets (|s) are supported; a timer,
// histogram or distribution sample rate is carried with the sample (the
// processor replays or weighs it); a rate outside (0, 1] drops the sample
// (kSampleRateOutOfRange), "@0" included (statsd_exporter reads it as 1);
// NaN and ±Inf values are refused (kNonFiniteValue) unless asked; a sample that
// would add more than kMaxAddition to a total is refused (kValueOutOfRange); a
// sample with more than kMaxTags tags is refused (kTooManyTags) where
// statsd_exporter keeps them all; a trailing '\r' is removed; empty lines are
// not counted; tag keys are not escaped here (exporters sanitise names).
// One StatsdParser per thread; parse_* never allocate, log or throw.

#include <array>
#include <cstddef>
#include <memory>
#include <string_view>

#include "ringpipe/ingest/parse.hpp"

namespace ringpipe::ingest {

struct StatsdOptions {
  bool dogstatsd_tags = true;     // |#k:v,k2:v2
  bool influxdb_tags = true;      // name,k=v,k2=v2:1|c
  bool librato_tags = true;       // name#k=v,k2=v2:1|c
  bool signalfx_tags = true;      // name[k=v,k2=v2]:1|c
  bool reject_non_finite = true;  // NaN/Inf values: kNonFiniteValue; false passes gauges and sets on
};

class StatsdParser {
 public:
  explicit StatsdParser(const StatsdOptions& options = {});

  // Splits on '\n' and parses every line; a bad line never spoils the others.
  void parse_packet(std::string_view packet, SampleOutput& out, ParseCounters& counters) noexcept;
  // One line, without its '\n' (a trailing '\r' is ignored).
  void parse_line(std::string_view line, SampleOutput& out, ParseCounters& counters) noexcept;

  [[nodiscard]] const StatsdOptions& options() const noexcept { return options_; }

 private:
  struct Line;
  bool parse_name_and_tags(std::string_view raw, Line& l, ParseCounters& counters) noexcept;
  void parse_sample(std::string_view value, std::string_view rest, Line& l, SampleOutput& out,
                    ParseCounters& counters) noexcept;

  StatsdOptions options_;
  std::array<sample::Tag, kMaxTags> tags_{};
  std::unique_ptr<char[]> name_buf_;  // kMaxNameBytes: SignalFx names with text after ']'
};

}  // namespace ringpipe::ingest
