#pragma once
// PromTextParser: the Prometheus text exposition format 0.0.4 and OpenMetrics
// 1.0, as a scrape returns them, into sample batches. Every series becomes one
// Kind::kGauge sample (set) under its own name — counters, histogram buckets,
// summary quantiles and their _sum/_count alike — so the exposition after the
// processor carries the target's values exactly (see ingest/README.md).
// `_created` series of counters, histograms and summaries are skipped (counted
// in ParseCounters::skipped_fields); exemplars are skipped. A bad line is
// dropped and counted under its ParseError reason; the rest of the body
// counts. One parser per thread: scratch space is allocated at construction,
// parse() never allocates, logs or throws.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringpipe/ingest/parse.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace ringpipe::ingest {

enum class PromFormat : std::uint8_t { kText, kOpenMetrics };
// The format a response's Content-Type names (application/openmetrics-text =
// OpenMetrics, anything else the text format, as Prometheus falls back).
[[nodiscard]] PromFormat prom_format_of(std::string_view content_type) noexcept;

struct PromTextOptions {
  std::size_t max_labels = kMaxTags;       // scraped labels per series (<= kMaxTags); more: too_many_tags, dropped
  std::size_t max_line_bytes = 64 * 1024;  // longer lines: line_too_long, dropped
  // Labels added to every series (instance, job). With honor_labels a scraped
  // label of the same name wins; without, the scraped one is renamed
  // exported_<name>, as Prometheus does. The views must outlive the parser.
  std::vector<sample::Tag> target_labels;
  bool honor_labels = false;
};

class PromTextParser {
 public:
  explicit PromTextParser(PromTextOptions options);

  // Parses a whole response body. `counters.samples` grows by the series
  // emitted (Prometheus' scrape_samples_scraped).
  void parse(std::string_view body, PromFormat format, SampleOutput& out, ParseCounters& counters) noexcept;
  // As parse(), in the format of the last set_format() (default: text), like the other parsers.
  void parse_packet(std::string_view body, SampleOutput& out, ParseCounters& counters) noexcept {
    parse(body, format_, out, counters);
  }
  void set_format(PromFormat format) noexcept { format_ = format; }

 private:
  using Type = sample::FamilyType;
  void parse_comment(std::string_view line, bool openmetrics, bool& eof, ParseCounters& c) noexcept;
  void parse_sample(std::string_view line, bool openmetrics, SampleOutput& out, ParseCounters& c) noexcept;
  [[nodiscard]] bool created_of_family(std::string_view name) const noexcept;

  PromTextOptions options_;
  std::vector<std::string> exported_names_;  // "exported_<key>" per target label
  std::vector<sample::Tag> tags_;            // scraped + target labels of the current line
  std::vector<char> unescaped_;              // label values with escapes, one line's worth
  // The family the last # TYPE, # HELP or # UNIT named, with what they said.
  std::string family_;
  Type family_type_ = Type::kUntyped;
  std::string help_;  // unescaped
  std::string unit_;
  PromFormat format_ = PromFormat::kText;
};

}  // namespace ringpipe::ingest
