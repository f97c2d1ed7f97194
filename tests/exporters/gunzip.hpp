#pragma once
// Test helper: inflates one gzip member (RFC 1952) with zlib, checking its
// CRC and length trailer. Header-only; thread-safe.

#include <zlib.h>

#include <optional>
#include <string>
#include <string_view>

namespace ringpipe::exporters::testing {

// The inflated bytes; nullopt when `in` is not exactly one whole, valid gzip
// member (truncated, corrupt, trailing bytes).
inline std::optional<std::string> gunzip(std::string_view in) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return std::nullopt;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  std::string out;
  int rc = Z_OK;
  while (rc == Z_OK) {
    const std::size_t at = out.size();
    out.resize(at + (1 << 20));
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + at);
    zs.avail_out = 1 << 20;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.resize(at + (1 << 20) - zs.avail_out);
  }
  const bool whole = rc == Z_STREAM_END && zs.avail_in == 0;
  inflateEnd(&zs);
  if (!whole) return std::nullopt;
  return out;
}

}  // namespace ringpipe::exporters::testing
