#include <string>
#include <string_view>

#include "ringpipe/processors/mapping.hpp"

namespace ringpipe::processors {
namespace {

constexpr bool valid_char(unsigned char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
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

}  // namespace

bool is_valid_metric_name(std::string_view name) noexcept {
  if (name.empty()) return true;
  if (name[0] >= '0' && name[0] <= '9') return false;
  for (const char c : name) {
    if (!valid_char(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

void escape_metric_name(std::string_view name, std::string& out) {
  if (name.empty()) return;
  if (name[0] >= '0' && name[0] <= '9') out.push_back('_');
  bool prev_dash = false;
  for (std::size_t i = 0; i < name.size();) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (valid_char(c)) {
      out.push_back(static_cast<char>(c));
      prev_dash = false;
      ++i;
      continue;
    }
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

std::string escape_metric_name(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 1);
  escape_metric_name(name, out);
  return out;
}

}  // namespace ringpipe::processors
