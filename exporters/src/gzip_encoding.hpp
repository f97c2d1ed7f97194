#pragma once
// The gzip content-coding of the pull endpoint: whether a request's
// Accept-Encoding consents to it, and the encoding itself (zlib). Plain
// functions of their arguments, safe from any thread; they do not throw.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ringpipe::exporters {

// zlib level for pages. The page is compressed on the scrape's path (every
// scrape sharing the rendering waits for it), so speed counts: on a text page
// of many labelled series level 1 removes ~88% of the bytes at ~260 MB/s,
// level 6 (zlib's default, which prometheus-cpp's handler used) ~91% at
// ~75 MB/s.
inline constexpr int kPageGzipLevel = 1;

// Whether `accept_encoding` (every Accept-Encoding field of the request,
// joined with ",") lets us answer with gzip, per RFC 9110 12.5.3: "gzip" or
// "*" with a weight above 0, a "gzip" entry overriding "*". Names are
// case-insensitive; an entry with a malformed weight consents to nothing.
[[nodiscard]] bool accepts_gzip(std::string_view accept_encoding) noexcept;

// A page is compressed in pieces of at least this many bytes, one thread each.
inline constexpr std::size_t kGzipPieceBytes = std::size_t{4} << 20;

// `text` as one gzip member (RFC 1952) at `level`; nullopt when zlib, memory
// or a thread fails (the caller then answers identity). With `threads` > 1
// and more than `piece_bytes` of text, the text is cut into up to `threads`
// pieces, each deflated on its own thread without the window of the one
// before (as pigz --independent does: ~1 % larger at 4 MiB pieces), and the
// pieces' streams are joined into the one member with the CRC of the whole.
// A 1M-series page (~120 MB) takes ~0.45 s at level 1 on one core.
[[nodiscard]] std::optional<std::string> gzip_compress(std::string_view text, int level, unsigned threads = 1,
                                                       std::size_t piece_bytes = kGzipPieceBytes) noexcept;

}  // namespace ringpipe::exporters
