#pragma once
// JSON lines parser: one object per line, e.g.
//   {"name":"temp","value":21.5,"ts":1700000000,"site":"lab","ok":true}
// A configurable field holds the value (a number, a boolean as 1/0, or a
// string holding a decimal number), another the metric name (or the name is
// fixed), an optional one the timestamp in a configured precision. Every
// other scalar field becomes a label (strings as they are, numbers in their
// shortest round-trip text, booleans as true/false); null, nested objects and
// arrays are skipped and counted in ParseCounters::skipped_fields. A line that
// is not one valid JSON object, or lacks its value or name, is dropped and
// counted by reason. Syntax and UTF-8 checks are simdjson's (libsimdjson-dev).
// One JsonParser per thread: it owns simdjson's parser and a padded copy of
// the line, both allocated once at construction for max_line_bytes; parse_*
// never allocate, log or throw.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ringpipe/ingest/influx_parser.hpp"
#include "ringpipe/ingest/parse.hpp"

namespace simdjson::dom {
class parser;
}  // namespace simdjson::dom

namespace ringpipe::ingest {

struct JsonOptions {
  std::string value_field = "value";
  std::string name_field = "name";  // ignored when `name` is set
  std::string name;                 // a fixed metric name for every line
  std::string timestamp_field;      // "" = receive time
  Precision timestamp_precision = Precision::kSeconds;
  sample::Kind kind = sample::Kind::kGauge;  // kGauge or kCounter
  std::size_t max_labels = kMaxTags;         // further labels skipped (kTooManyTags), sample kept
  std::size_t max_line_bytes = 65536;        // longer lines: kLineTooLong
};

// Largest max_line_bytes a JsonParser accepts (simdjson needs ~15 bytes of
// memory per byte of capacity, allocated up front).
inline constexpr std::size_t kMaxJsonLineBytes = 1u << 20;

class JsonParser {
 public:
  // max_line_bytes is clamped to 1..kMaxJsonLineBytes, max_labels to kMaxTags.
  explicit JsonParser(const JsonOptions& options = {});
  ~JsonParser();
  JsonParser(JsonParser&&) noexcept;
  JsonParser& operator=(JsonParser&&) noexcept;

  void parse_packet(std::string_view packet, SampleOutput& out, ParseCounters& counters) noexcept;
  // One object, without its '\n' (a trailing '\r' and surrounding blanks are ignored).
  void parse_line(std::string_view line, SampleOutput& out, ParseCounters& counters) noexcept;

  [[nodiscard]] const JsonOptions& options() const noexcept { return options_; }
  // The metric name for lines without a name field (when no fixed name is
  // set), e.g. from an MQTT topic; the view must outlive the parse calls.
  void set_fallback_name(std::string_view name) noexcept { fallback_name_ = name; }

 private:
  JsonOptions options_;
  std::string_view fallback_name_;
  std::unique_ptr<simdjson::dom::parser> parser_;
  std::unique_ptr<char[]> line_;     // max_line_bytes + simdjson's padding
  std::unique_ptr<char[]> numbers_;  // label values formatted from numbers
  std::array<sample::Tag, kMaxTags> tags_{};
};

}  // namespace ringpipe::ingest
