#include "text_writer.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <limits>

namespace ringpipe::exporters::text {
namespace {

// prometheus-cpp sets the stream's precision to max_digits10 - 1.
constexpr int kPrecision = std::numeric_limits<double>::max_digits10 - 1;
// Below this an integral double has at most 15 digits, which "%.16g" writes whole.
constexpr double kPlainIntegerLimit = 1e15;

}  // namespace

void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out.append("Nan");
    return;
  }
  if (std::isinf(v)) {
    out.append(v < 0 ? "-Inf" : "+Inf");
    return;
  }
  std::array<char, 64> buf;
  std::to_chars_result r;
  if (std::fabs(v) < kPlainIntegerLimit && v == std::trunc(v) && !(v == 0 && std::signbit(v))) {
    r = std::to_chars(buf.data(), buf.data() + buf.size(), static_cast<std::int64_t>(v));
  } else {
    r = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::general, kPrecision);
  }
  out.append(buf.data(), r.ptr);
}

void append_count(std::string& out, double v) {
  if (!(v >= 0 && v < 0x1p64 && v == std::trunc(v))) {  // -0 is 0 here, as prometheus-cpp writes it
    append_double(out, v);
    return;
  }
  std::array<char, 24> buf;
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), static_cast<std::uint64_t>(v));
  out.append(buf.data(), r.ptr);
}

void append_escaped(std::string& out, std::string_view value) {
  std::size_t from = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c != '\\' && c != '"' && c != '\n') continue;
    out.append(value.data() + from, i - from);
    out.push_back('\\');
    out.push_back(c == '\n' ? 'n' : c);
    from = i + 1;
  }
  out.append(value.data() + from, value.size() - from);
}

void append_family_head(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  if (!help.empty()) {
    out.append("# HELP ").append(name).push_back(' ');
    out.append(help).push_back('\n');
  }
  out.append("# TYPE ").append(name).push_back(' ');
  out.append(type).push_back('\n');
}

void append_head(std::string& out, std::string_view name, std::string_view suffix, std::span<const std::byte> labels,
                 std::uint16_t label_count, ExtraLabel extra, std::string_view skip) {
  out.append(name).append(suffix);
  const char* sep = "{";
  metric::for_each_label(labels, label_count, [&](const metric::Label& l) {
    if (!skip.empty() && l.name == skip) return;
    out.append(sep).append(l.name).append("=\"");
    append_escaped(out, l.value);
    out.push_back('"');
    sep = ",";
  });
  if (!extra.name.empty()) {
    out.append(sep).append(extra.name).append("=\"");
    append_escaped(out, extra.value);
    out.push_back('"');
    sep = ",";
  }
  if (*sep == ',') out.push_back('}');
  out.push_back(' ');
}

}  // namespace ringpipe::exporters::text
