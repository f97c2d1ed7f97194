#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "ringpipe/processors/mapping.hpp"

namespace ringpipe::processors {
namespace {

// [a-zA-Z0-9_] as a table: one load per byte on the per-sample path (every
// name and tag key is checked, most are valid and need no copy).
using CharTable = std::array<bool, 256>;

constexpr CharTable make_table(bool colon) noexcept {
  CharTable t{};
  for (int c = 0; c < 256; ++c) {
    t[static_cast<std::size_t>(c)] =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || (colon && c == ':');
  }
  return t;
}

constexpr CharTable kValidChar = make_table(false);
constexpr CharTable kValidPromChar = make_table(true);

// Length of the run of valid characters at the start of s.
std::size_t valid_run(const CharTable& valid, const char* p, std::size_t n) noexcept {
  std::size_t i = 0;
  while (i < n && valid[static_cast<unsigned char>(p[i])]) ++i;
  return i;
}

// Width of the UTF-8 sequence at s[i]; 1 for an invalid one (as Go's range does).
std::size_t rune_width(std::string_view s, std::size_t i) noexcept {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t w = 1;
  if (c >= 0xC2 && c <= 0xDF) {
    w = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    w = 3;
  } else if (c >= 0xF0 && c <= 0xF4) {
    w = 4;
  }
  if (w == 1 || i + w > s.size()) return 1;
  for (std::size_t k = 1; k < w; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 1;
  }
  return w;
}

bool valid_name(const CharTable& valid, std::string_view name) noexcept {
  if (name.empty()) return true;
  if (name[0] >= '0' && name[0] <= '9') return false;
  return valid_run(valid, name.data(), name.size()) == name.size();
}

// Appends name's escaped bytes to `out`: a std::string, or a Comparer.
template <class Out>
void escape_name(const CharTable& valid, std::string_view name, Out& out) {
  if (name.empty()) return;
  if (name[0] >= '0' && name[0] <= '9') out.push_back('_');
  bool prev_dash = false;
  for (std::size_t i = 0; i < name.size();) {
    const std::size_t run = valid_run(valid, name.data() + i, name.size() - i);
    if (run != 0) {  // copied as a whole: most of a name is valid
      out.append(name.data() + i, run);
      prev_dash = false;
      i += run;
      continue;
    }
    const auto c = static_cast<unsigned char>(name[i]);
    if (c == '-') {
      if (!prev_dash) out.push_back('_');
      prev_dash = true;
      ++i;
      continue;
    }
    out.push_back('_');
    prev_dash = false;
    i += rune_width(name, i);
  }
}

// An escape_name() output that checks the bytes against a target instead of keeping them.
class Comparer {
 public:
  explicit Comparer(std::string_view target) noexcept : target_(target) {}
  void append(const char* p, std::size_t n) noexcept {
    if (equal_ && target_.size() - at_ >= n && std::memcmp(target_.data() + at_, p, n) == 0) {
      at_ += n;
    } else {
      equal_ = false;
    }
  }
  void push_back(char c) noexcept { append(&c, 1); }
  [[nodiscard]] bool equal() const noexcept { return equal_ && at_ == target_.size(); }

 private:
  std::string_view target_;
  std::size_t at_ = 0;
  bool equal_ = true;
};

}  // namespace

namespace {

// Whether escaping turns name[i] into the '_' in a same-length valid name:
// an invalid ASCII byte does, and so does a '-' that does not follow one.
bool underscores(const CharTable& valid, std::string_view name, std::size_t i) noexcept {
  const auto c = static_cast<unsigned char>(name[i]);
  return c < 0x80 && !valid[c] && (c != '-' || i == 0 || name[i - 1] != '-');
}

}  // namespace

bool escapes_to_valid_name(std::string_view name, std::string_view valid_name, bool prom) noexcept {
  const CharTable& valid = prom ? kValidPromChar : kValidChar;
  // Same length: every byte where the two differ must be one escaping makes
  // '_' (the valid name has '_' there); an equal byte is valid, as all of
  // the valid name's are. Then escaping maps each byte to itself or '_' and
  // gives the valid name: a leading digit, a multi-byte rune or a run of '-'
  // (which would change the length) all differ and are refused here. Eight
  // bytes are compared at a time: most differ nowhere or in one place.
  const std::size_t n = name.size();
  if (n == valid_name.size()) {
    const auto ok = [&](std::size_t i) { return valid_name[i] == '_' && underscores(valid, name, i); };
    bool same = true;
    std::size_t i = 0;
    for (; same && i + 8 <= n; i += 8) {
      std::uint64_t a = 0;
      std::uint64_t b = 0;
      std::memcpy(&a, name.data() + i, 8);
      std::memcpy(&b, valid_name.data() + i, 8);
      for (std::uint64_t x = a ^ b; same && x != 0;) {  // little-endian: byte k of x is name[i + k]'s
        const auto k = static_cast<unsigned>(__builtin_ctzll(x)) / 8;
        same = ok(i + k);
        x &= ~(std::uint64_t{0xFF} << (k * 8));
      }
    }
    for (; same && i < n; ++i) same = name[i] == valid_name[i] || ok(i);
    if (same) return true;
  }
  return escapes_to(name, valid_name, prom);
}

bool escapes_to(std::string_view name, std::string_view escaped, bool prom) noexcept {
  Comparer c(escaped);
  escape_name(prom ? kValidPromChar : kValidChar, name, c);
  return c.equal();
}

bool is_valid_metric_name(std::string_view name) noexcept { return valid_name(kValidChar, name); }
bool is_valid_prom_metric_name(std::string_view name) noexcept { return valid_name(kValidPromChar, name); }
void escape_metric_name(std::string_view name, std::string& out) { escape_name(kValidChar, name, out); }
void escape_prom_metric_name(std::string_view name, std::string& out) { escape_name(kValidPromChar, name, out); }

std::string escape_metric_name(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 1);
  escape_metric_name(name, out);
  return out;
}

}  // namespace ringpipe::processors
