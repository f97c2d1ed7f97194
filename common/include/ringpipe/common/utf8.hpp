#pragma once
// UTF-8 validation as Go's utf8.ValidString: rejects overlong forms,
// surrogates and code points above U+10FFFF. Shared by the parsers (ingest)
// and relabeling; header-only, so code that compiles a part's sources
// directly (the fuzz targets) needs no library for it.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace ringpipe::common {

// The whole check, from the first byte.
[[nodiscard]] inline bool valid_utf8_slow(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned char* const end = p + s.size();
  // ASCII fast path, 8 bytes at a time.
  while (end - p >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    if ((w & 0x8080808080808080ULL) != 0) break;
    p += 8;
  }
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t n;
    std::uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;  // continuation byte, C0/C1 overlong lead, or > U+10FFFF
    }
    if (static_cast<std::size_t>(end - p) <= n) return false;
    for (std::size_t i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    p += n + 1;
  }
  return true;
}

// Inline ASCII fast path (8 bytes at a time, the usual line); anything else
// is checked by valid_utf8_slow from the first word with a high bit.
[[nodiscard]] inline bool valid_utf8(std::string_view s) noexcept {
  const char* p = s.data();
  std::size_t n = s.size();
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    if ((w & 0x8080808080808080ULL) != 0) return valid_utf8_slow(std::string_view(p, n));
    p += 8;
    n -= 8;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (static_cast<unsigned char>(p[i]) >= 0x80) return valid_utf8_slow(std::string_view(p + i, n - i));
  }
  return true;
}

}  // namespace ringpipe::common
