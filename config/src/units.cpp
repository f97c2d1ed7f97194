#include "ringpipe/config/units.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

namespace ringpipe::config {
namespace {

bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

// A run of decimal digits as a number; nullopt past 2^64 - 1.
std::optional<std::uint64_t> digits_value(std::string_view digits) {
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, 10);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<std::uint64_t> parse_size(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size() && is_digit(s[i])) ++i;
  if (i == 0) return std::nullopt;
  const auto number = digits_value(s.substr(0, i));
  if (!number) return std::nullopt;
  std::string_view unit = s.substr(i);
  if (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  struct Unit {
    std::string_view name;
    std::uint64_t factor;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},
      {"B", 1},
      {"KiB", 1ull << 10},
      {"MiB", 1ull << 20},
      {"GiB", 1ull << 30},
      {"TiB", 1ull << 40},
      {"kB", 1000},
      {"KB", 1000},
      {"MB", 1000'000},
      {"GB", 1000'000'000},
      {"TB", 1000'000'000'000ull},
  };
  for (const auto& u : kUnits) {
    if (u.name == unit) {
      if (*number > std::numeric_limits<std::uint64_t>::max() / u.factor) return std::nullopt;
      return *number * u.factor;
    }
  }
  return std::nullopt;
}

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view s) noexcept {
  if (s == "0") return std::chrono::nanoseconds{0};
  if (s.empty()) return std::nullopt;
  long double total = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t start = i;
    while (i < s.size() && (is_digit(s[i]) || s[i] == '.')) ++i;
    if (i == start) return std::nullopt;
    double value = 0;
    const auto [ptr, ec] = std::from_chars(s.data() + start, s.data() + i, value);
    if (ec != std::errc() || ptr != s.data() + i || std::isnan(value) || value < 0) return std::nullopt;
    const std::size_t unit_start = i;
    while (i < s.size() && !is_digit(s[i]) && s[i] != '.') ++i;
    const std::string_view unit = s.substr(unit_start, i - unit_start);
    long double factor = 0;
    if (unit == "ns")
      factor = 1;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs")
      factor = 1e3L;
    else if (unit == "ms")
      factor = 1e6L;
    else if (unit == "s")
      factor = 1e9L;
    else if (unit == "m")
      factor = 60e9L;
    else if (unit == "h")
      factor = 3600e9L;
    else
      return std::nullopt;
    total += static_cast<long double>(value) * factor;
  }
  if (total > static_cast<long double>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
  return std::chrono::nanoseconds{static_cast<std::int64_t>(total)};
}

std::optional<std::chrono::milliseconds> to_millis(std::chrono::nanoseconds d) noexcept {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d);
  if (d.count() > 0 && ms.count() == 0) return std::nullopt;
  return ms;
}

std::optional<std::chrono::milliseconds> parse_millis(std::string_view text) noexcept {
  const auto d = parse_duration(text);
  if (!d) return std::nullopt;
  return to_millis(*d);
}

}  // namespace ringpipe::config
