#pragma once
// Text exposition format 0.0.4 pieces, written byte for byte as prometheus-cpp
// 1.0's TextSerializer writes them (numbers as printf's "%.16g", NaN as
// "Nan", infinities as "+Inf"/"-Inf", label values with \\, \" and \n
// escaped, HELP text as is), so SeriesState can write the page straight from
// its own state instead of building a MetricFamily per series first.
// Free functions appending to a caller's string; no state, any thread.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "ringpipe/metric/metric_record.hpp"

namespace ringpipe::exporters::text {

// A sample value or an `le`/`quantile` label value.
void append_double(std::string& out, double v);
// A histogram's or summary's count: a whole number below 2^64 as the integer
// prometheus-cpp writes for its uint64 counts, anything else (a fraction,
// 2^64 and beyond, +Inf, NaN, a negative) as the float it is, as Prometheus
// keeps counts.
void append_count(std::string& out, double v);
// A label value between its quotes.
void append_escaped(std::string& out, std::string_view value);
// "# HELP <name> <help>\n" (when help is not empty) and "# TYPE <name> <type>\n".
void append_family_head(std::string& out, std::string_view name, std::string_view help, std::string_view type);

// One sample line's head: `<name><suffix>{<labels>[,<extra_name>="<extra>"]} `,
// without braces when there are no labels at all. `skip` names an encoded
// label left out (the `le`/`quantile` a Prometheus family's sample carries).
struct ExtraLabel {
  std::string_view name;   // empty: none
  std::string_view value;  // written escaped
};
void append_head(std::string& out, std::string_view name, std::string_view suffix, std::span<const std::byte> labels,
                 std::uint16_t label_count, ExtraLabel extra = {}, std::string_view skip = {});

}  // namespace ringpipe::exporters::text
