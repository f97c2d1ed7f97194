#include "text.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>

namespace ringpipe::ingest::text {
namespace {

constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

bool iequals(std::string_view a, std::string_view lower) noexcept {
  if (a.size() != lower.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const char c = (a[i] >= 'A' && a[i] <= 'Z') ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (c != lower[i]) return false;
  }
  return true;
}

// Digits with at most one '.', at most 15 significant digits and no exponent:
// the integer mantissa and the power of ten are both exact doubles, so one
// division is correctly rounded (Clinger's fast path). The common case.
bool fast_decimal(std::string_view s, double& out) noexcept {
  std::uint64_t mant = 0;
  int digits = 0;
  int frac = -1;
  for (const char c : s) {
    if (is_digit(c)) {
      mant = mant * 10 + static_cast<std::uint64_t>(c - '0');
      if (++digits > 15) return false;
      if (frac >= 0) ++frac;
    } else if (c == '.' && frac < 0) {
      frac = 0;
    } else {
      return false;
    }
  }
  if (digits == 0) return false;
  out = frac > 0 ? static_cast<double>(mant) / kPow10[frac] : static_cast<double>(mant);
  return true;
}

// Decides, for a from_chars out-of-range result, whether the number was too
// small (rounds to 0, as Go does) rather than too large (an error).
bool is_underflow(std::string_view s) noexcept {
  std::size_t e = s.find_first_of("eEpP");
  if (e != std::string_view::npos && e + 1 < s.size() && s[e + 1] == '-') return true;
  if (e != std::string_view::npos) return false;
  // No exponent: out of range only if tiny, i.e. the integer part is zero.
  for (const char c : s.substr(0, s.find('.'))) {
    if (c != '0') return false;
  }
  return true;
}

bool parse_unsigned_body(std::string_view body, bool allow_hex, double& out) noexcept {
  if (body.empty()) return false;
  if (fast_decimal(body, out)) return true;
  const char* first = body.data();
  const char* last = first + body.size();
  std::chars_format fmt = std::chars_format::general;
  if (allow_hex && body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')) {
    first += 2;
    fmt = std::chars_format::hex;
    if (body.find_first_of("pP") == std::string_view::npos) return false;  // Go requires the p exponent
  } else if (!is_digit(body[0]) && body[0] != '.') {
    return false;  // from_chars would take "inf"/"nan"; callers decide about those
  }
  if (first < last && (*first == '-' || *first == '+')) return false;
  double v = 0;
  const auto r = std::from_chars(first, last, v, fmt);
  if (r.ptr != last) return false;
  if (r.ec == std::errc::result_out_of_range) {
    if (!is_underflow(body)) return false;
    v = 0.0;
  } else if (r.ec != std::errc()) {
    return false;
  }
  out = v;
  return true;
}

}  // namespace

bool parse_float_slow(std::string_view s, double& out) noexcept {
  if (s.empty()) return false;
  bool neg = false;
  bool sign = false;
  std::string_view body = s;
  if (body[0] == '+' || body[0] == '-') {
    neg = body[0] == '-';
    sign = true;
    body.remove_prefix(1);
  }
  if (body.empty()) return false;
  if (is_digit(body[0]) || body[0] == '.') {
    double v;
    if (!parse_unsigned_body(body, true, v)) return false;
    out = neg ? -v : v;
    return true;
  }
  if (iequals(body, "inf") || iequals(body, "infinity")) {
    out = neg ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    return true;
  }
  if (!sign && iequals(body, "nan")) {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  return false;
}

bool parse_decimal(std::string_view s, double& out) noexcept {
  if (s.empty()) return false;
  bool neg = false;
  if (s[0] == '+' || s[0] == '-') {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  double v;
  if (!parse_unsigned_body(s, false, v)) return false;
  out = neg ? -v : v;
  return true;
}

bool parse_int64(std::string_view s, std::int64_t& out) noexcept {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty() || (s[0] == '-' && s.size() > 1 && s[1] == '+')) return false;
  std::int64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return false;
  out = v;
  return true;
}

bool parse_uint64(std::string_view s, std::uint64_t& out) noexcept {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty() || !is_digit(s[0])) return false;
  std::uint64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return false;
  out = v;
  return true;
}

}  // namespace ringpipe::ingest::text
