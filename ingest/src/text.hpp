#pragma once
// Text primitives shared by the parsers: line splitting, UTF-8 validation and
// number parsing over string_views. Pure functions; never allocate or throw.

#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "ringpipe/common/utf8.hpp"

namespace ringpipe::ingest::text {

// Position of the first '\n' in [p, end), or end. Sixteen bytes a step
// with SSE2 (every x86-64) and one overlapping load of the last sixteen,
// which may start before p but never before `begin` (the packet's start): a datagram's lines are a few dozen bytes,
// where a call to memchr and its set-up cost more than the scan (memchr and the branch after it were the largest cost
// in the StatsD source's profile).
[[nodiscard]] inline const char* find_newline(const char* const begin, const char* p, const char* const end) noexcept {
#if defined(__SSE2__)
  if (end - begin >= 16) {
    const __m128i nl = _mm_set1_epi8('\n');
    const char* q = p;
    for (; end - q >= 16; q += 16) {
      const auto bits = static_cast<std::uint32_t>(
          _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)), nl)));
      if (bits != 0) return q + std::countr_zero(bits);
    }
    if (q == end) return end;
    const char* const last = end - 16;  // q > last: the bytes before q are done
    const auto bits = static_cast<std::uint32_t>(_mm_movemask_epi8(
                          _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(last)), nl))) >>
                      static_cast<unsigned>(q - last);
    return bits != 0 ? q + std::countr_zero(bits) : end;
  }
#endif
  const auto* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
  return nl != nullptr ? nl : end;
}

// Calls f(line) for each '\n'-separated line, without the '\n' or a trailing '\r'.
// A trailing newline does not produce an extra empty line.
template <class F>
inline void for_each_line(std::string_view packet, F&& f) noexcept {
  const char* p = packet.data();
  const char* const end = p + packet.size();
  while (p < end) {
    const char* const line_end = find_newline(packet.data(), p, end);
    std::size_t n = static_cast<std::size_t>(line_end - p);
    if (n > 0 && p[n - 1] == '\r') --n;
    f(std::string_view(p, n));
    if (line_end == end) break;
    p = line_end + 1;
  }
}

// Position of the first `c` in s at or after `from`, or npos. An inline loop:
// the fields it searches are a few bytes long, where a library call's set-up
// costs more than the scan.
[[nodiscard]] inline std::size_t find_byte(std::string_view s, char c, std::size_t from = 0) noexcept {
  for (std::size_t i = from; i < s.size(); ++i) {
    if (s[i] == c) return i;
  }
  return std::string_view::npos;
}

// s.substr(pos, n) without the range check (pos <= s.size() is the caller's
// promise): string_view::substr's throwing path keeps it out of line.
[[nodiscard]] inline std::string_view sub(std::string_view s, std::size_t pos,
                                          std::size_t n = std::string_view::npos) noexcept {
  const std::size_t rest = s.size() - pos;
  return std::string_view(s.data() + pos, n < rest ? n : rest);
}

// UTF-8 validation (Go's utf8.ValidString), shared with relabeling.
using common::valid_utf8;
using common::valid_utf8_slow;

// Go's strconv.ParseFloat(s, 64): optional sign, decimal or 0x-hex, "Inf",
// "Infinity" (signed or not) and "NaN" in any case; overflow is an error,
// underflow rounds to zero.
[[nodiscard]] bool parse_float_slow(std::string_view s, double& out) noexcept;
// Inline fast path for the usual value: 1 to 15 digits with at most one '.'
// and no sign (exact: Clinger's fast path, as in parse_float_slow); anything
// else goes to parse_float_slow.
[[nodiscard]] inline bool parse_float(std::string_view s, double& out) noexcept {
  constexpr double kPow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
  if (s.empty() || s.size() > 16) return parse_float_slow(s, out);
  std::uint64_t mant = 0;
  int digits = 0;
  int frac = -1;
  for (const char c : s) {
    if (c >= '0' && c <= '9') {
      mant = mant * 10 + static_cast<std::uint64_t>(c - '0');
      ++digits;
      if (frac >= 0) ++frac;
    } else if (c == '.' && frac < 0) {
      frac = 0;
    } else {
      return parse_float_slow(s, out);
    }
  }
  if (digits == 0 || digits > 15) return parse_float_slow(s, out);
  out = frac > 0 ? static_cast<double>(mant) / kPow10[frac] : static_cast<double>(mant);
  return true;
}
// A plain decimal number (optional sign, digits, '.', exponent): no NaN, Inf or hex.
[[nodiscard]] bool parse_decimal(std::string_view s, double& out) noexcept;
// Base-10 integer with an optional sign; false on overflow or junk.
[[nodiscard]] bool parse_int64(std::string_view s, std::int64_t& out) noexcept;
[[nodiscard]] bool parse_uint64(std::string_view s, std::uint64_t& out) noexcept;

[[nodiscard]] inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

}  // namespace ringpipe::ingest::text
