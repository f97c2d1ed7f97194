#include "gzip_encoding.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>
#include <thread>
#include <vector>

namespace ringpipe::exporters {
namespace {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const char x = (a[i] >= 'A' && a[i] <= 'Z') ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

// RFC 9110's qvalue, ("0" ["." 0*3DIGIT]) / ("1" ["." 0*3"0"]), in thousandths.
std::optional<int> parse_qvalue(std::string_view v) noexcept {
  if (v.empty() || (v[0] != '0' && v[0] != '1')) return std::nullopt;
  const int whole = v[0] - '0';
  if (v.size() == 1) return whole * 1000;
  if (v[1] != '.' || v.size() > 5) return std::nullopt;
  int thousandths = 0;
  int digits = 0;
  for (const char c : v.substr(2)) {
    if (c < '0' || c > '9') return std::nullopt;
    thousandths = thousandths * 10 + (c - '0');
    ++digits;
  }
  for (; digits < 3; ++digits) thousandths *= 10;
  if (whole == 1 && thousandths != 0) return std::nullopt;
  return whole * 1000 + thousandths;
}

// The weight of one list element ("coding;q=0.5"), 0 when it is malformed.
int weight_of(std::string_view params) noexcept {
  int q = 1000;
  while (!params.empty()) {
    const std::size_t semicolon = params.find(';');
    const std::string_view param = trim(params.substr(0, semicolon));
    params = semicolon == std::string_view::npos ? std::string_view{} : params.substr(semicolon + 1);
    const std::size_t eq = param.find('=');
    if (!iequals(trim(param.substr(0, eq)), "q")) continue;
    if (eq == std::string_view::npos) return 0;
    const std::optional<int> v = parse_qvalue(trim(param.substr(eq + 1)));
    if (!v) return 0;
    q = *v;
  }
  return q;
}

}  // namespace

bool accepts_gzip(std::string_view accept_encoding) noexcept {
  // The lowest weight given to a name wins, so a repeated or malformed entry
  // can only withdraw consent.
  std::optional<int> gzip;
  std::optional<int> any;
  while (!accept_encoding.empty()) {
    const std::size_t comma = accept_encoding.find(',');
    const std::string_view element = accept_encoding.substr(0, comma);
    accept_encoding = comma == std::string_view::npos ? std::string_view{} : accept_encoding.substr(comma + 1);
    const std::size_t semicolon = element.find(';');
    const std::string_view coding = trim(element.substr(0, semicolon));
    const int q = semicolon == std::string_view::npos ? 1000 : weight_of(element.substr(semicolon + 1));
    if (iequals(coding, "gzip")) {
      gzip = std::min(gzip.value_or(q), q);
    } else if (coding == "*") {
      any = std::min(any.value_or(q), q);
    }
  }
  if (gzip) return *gzip > 0;
  return any.value_or(0) > 0;
}

namespace {

// zlib counts in 32-bit uInt: it is handed text and room in slices.
constexpr std::size_t kSlice = std::size_t{1} << 30;

// Deflates `text` with the z_stream `zs` set up by the caller (gzip or raw),
// ending it with `flush` (Z_FINISH, or Z_SYNC_FLUSH for a piece others follow).
std::optional<std::string> deflate_all(z_stream& zs, std::string_view text, int flush) {
  std::string out;
  out.resize(std::min<std::size_t>(deflateBound(&zs, text.size()), text.size() / 4 + 4096));
  std::size_t produced = 0;
  std::size_t consumed = 0;
  for (;;) {
    if (zs.avail_in == 0 && consumed < text.size()) {
      const std::size_t n = std::min(text.size() - consumed, kSlice);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data() + consumed));
      zs.avail_in = static_cast<uInt>(n);
      consumed += n;
    }
    if (produced == out.size()) out.resize(out.size() * 2);
    const std::size_t room = std::min(out.size() - produced, kSlice);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = static_cast<uInt>(room);
    const bool last = consumed == text.size() && zs.avail_in == 0;
    const int rc = deflate(&zs, last ? flush : Z_NO_FLUSH);
    produced += room - zs.avail_out;
    if (rc == Z_STREAM_END) break;
    // A flush other than Z_FINISH is done when it left room unused.
    if (last && flush != Z_FINISH && (rc == Z_OK || rc == Z_BUF_ERROR) && zs.avail_out != 0) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) return std::nullopt;
  }
  out.resize(produced);
  return out;
}

// One gzip member of `text` on this thread.
std::optional<std::string> gzip_one(std::string_view text, int level) {
  z_stream zs{};
  // windowBits 15 + 16: a gzip header and trailer around the deflate stream.
  if (deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) return std::nullopt;
  std::optional<std::string> out = deflate_all(zs, text, Z_FINISH);
  deflateEnd(&zs);
  if (out) out->shrink_to_fit();
  return out;
}

// One piece of a member: raw deflate (no header), ended byte-aligned by
// Z_SYNC_FLUSH, or by Z_FINISH (the final block) for the last piece, and its CRC.
struct Piece {
  std::optional<std::string> deflated;
  uLong crc = 0;
};
Piece deflate_piece(std::string_view text, int level, bool last) {
  Piece p;
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) return p;
  p.deflated = deflate_all(zs, text, last ? Z_FINISH : Z_SYNC_FLUSH);
  deflateEnd(&zs);
  p.crc = crc32(0, nullptr, 0);
  for (std::size_t at = 0; at < text.size(); at += kSlice) {
    const std::size_t n = std::min(text.size() - at, kSlice);
    p.crc = crc32(p.crc, reinterpret_cast<const Bytef*>(text.data() + at), static_cast<uInt>(n));
  }
  return p;
}

void append_le32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

std::optional<std::string> gzip_compress(std::string_view text, int level, unsigned threads,
                                         std::size_t piece_bytes) noexcept {
  try {
    const std::size_t least = std::max<std::size_t>(piece_bytes, 1);
    std::size_t pieces = std::min<std::size_t>(std::max(threads, 1U), (text.size() + least - 1) / least);
    if (pieces <= 1) return gzip_one(text, level);
    const std::size_t each = (text.size() + pieces - 1) / pieces;
    pieces = (text.size() + each - 1) / each;  // none empty
    std::vector<Piece> done(pieces);
    {
      std::vector<std::jthread> workers;
      workers.reserve(pieces - 1);
      for (std::size_t i = 1; i < pieces; ++i) {
        const std::string_view part = text.substr(i * each, each);
        workers.emplace_back(
            [&done, i, part, level, last = i + 1 == pieces] { done[i] = deflate_piece(part, level, last); });
      }
      done[0] = deflate_piece(text.substr(0, each), level, false);
    }                        // joined
    std::size_t bytes = 18;  // header and trailer
    for (const Piece& p : done) {
      if (!p.deflated) return std::nullopt;
      bytes += p.deflated->size();
    }
    std::string out;
    out.reserve(bytes);
    // RFC 1952: ID1 ID2, CM 8 (deflate), no flags, no MTIME, XFL 0, OS 3 (Unix).
    out.append("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10);
    uLong crc = done[0].crc;
    out += *done[0].deflated;
    for (std::size_t i = 1; i < pieces; ++i) {
      const std::size_t len = std::min(each, text.size() - i * each);
      crc = crc32_combine(crc, done[i].crc, static_cast<z_off_t>(len));
      out += *done[i].deflated;
    }
    append_le32(out, static_cast<std::uint32_t>(crc));
    append_le32(out, static_cast<std::uint32_t>(text.size() & 0xffffffffU));  // ISIZE: the length mod 2^32
    return out;
  } catch (...) {  // memory, or a thread that could not start
    return std::nullopt;
  }
}

}  // namespace ringpipe::exporters
