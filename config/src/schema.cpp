#include "schema.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>

namespace ringpipe::config::detail {

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  out += '"';
  return out;
}

std::string describe(const YamlNode& node) {
  switch (node.kind) {
    case YamlNode::Kind::kNull:
      return "nothing (null)";
    case YamlNode::Kind::kSequence:
      return "a list";
    case YamlNode::Kind::kMap:
      return "a map";
    case YamlNode::Kind::kScalar:
      break;
  }
  return quote(node.scalar);
}

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t prev = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cur = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1)});
      prev = cur;
    }
  }
  return row[b.size()];
}

std::string join(std::initializer_list<std::string_view> list) {
  std::string out;
  for (auto s : list) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

}  // namespace

Fields::Fields(const YamlNode* map, std::string where, std::initializer_list<std::string_view> known, Diags& diags)
    : where_(std::move(where)) {
  if (map == nullptr) return;
  if (!map->is_map()) {
    diags.add(*map, where_ + ": found " + describe(*map) + ", expected a map with keys: " + join(known));
    return;
  }
  map_ = map;
  std::set<std::string, std::less<>> seen;
  for (const auto& [key, value] : map->entries) {
    if (!key.is_scalar()) {
      diags.add(key, where_ + ": found " + describe(key) + " as a key, expected one of: " + join(known));
      continue;
    }
    if (std::find(known.begin(), known.end(), key.scalar) == known.end()) {
      std::string msg = where_ + ": found unknown key " + quote(key.scalar) + ", expected one of: " + join(known);
      std::string_view best;
      std::size_t best_distance = 3;
      for (auto k : known) {
        const std::size_t dist = edit_distance(key.scalar, k);
        if (dist < best_distance) {
          best_distance = dist;
          best = k;
        }
      }
      if (!best.empty()) msg += " (did you mean " + quote(best) + "?)";
      diags.add(key, std::move(msg));
      continue;
    }
    if (!seen.insert(key.scalar).second) {
      diags.add(key, where_ + ": found key " + quote(key.scalar) + " a second time, expected each key once");
    }
  }
}

const YamlNode* Fields::get(std::string_view key) const {
  if (map_ == nullptr) return nullptr;
  for (const auto& [k, v] : map_->entries) {
    if (k.is_scalar() && k.scalar == key) return &v;
  }
  return nullptr;
}

// ---------------------------------------------------------------- parsers

std::optional<bool> parse_bool(std::string_view s) {
  static constexpr std::string_view kTrue[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
  static constexpr std::string_view kFalse[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
  if (std::find(std::begin(kTrue), std::end(kTrue), s) != std::end(kTrue)) return true;
  if (std::find(std::begin(kFalse), std::end(kFalse), s) != std::end(kFalse)) return false;
  return std::nullopt;
}

std::optional<std::uint64_t> parse_uint(std::string_view s) {
  if (s.empty() || s.front() == '+' || s.front() == '-') return std::nullopt;
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> parse_double(std::string_view s) {
  if (s.empty()) return std::nullopt;
  if (s == ".inf" || s == "+.inf" || s == ".Inf" || s == "+Inf" || s == "+inf" || s == "inf" || s == "Inf") {
    return std::numeric_limits<double>::infinity();
  }
  if (s == "-.inf" || s == "-.Inf" || s == "-Inf" || s == "-inf") return -std::numeric_limits<double>::infinity();
  std::string_view body = s.front() == '+' ? s.substr(1) : s;
  double v = 0;
  const auto [ptr, ec] = std::from_chars(body.data(), body.data() + body.size(), v);
  if (ec != std::errc() || ptr != body.data() + body.size() || std::isnan(v)) return std::nullopt;
  return v;
}

// ---------------------------------------------------------------- reads

namespace {

const YamlNode* scalar_or_report(const YamlNode& n, std::string_view what, std::string_view expected, Diags& d) {
  if (n.is_scalar()) return n.poisoned ? nullptr : &n;
  d.add(n, std::string(what) + ": found " + describe(n) + ", expected " + std::string(expected));
  return nullptr;
}

}  // namespace

std::optional<std::string> read_string(const YamlNode& n, std::string_view what, Diags& d) {
  if (!scalar_or_report(n, what, "a string", d)) return std::nullopt;
  return n.scalar;
}

std::optional<bool> read_bool(const YamlNode& n, std::string_view what, Diags& d) {
  constexpr std::string_view kExpected = "true or false";
  if (!scalar_or_report(n, what, kExpected, d)) return std::nullopt;
  if (auto v = parse_bool(n.scalar)) return v;
  d.add(n, std::string(what) + ": found " + describe(n) + ", expected " + std::string(kExpected));
  return std::nullopt;
}

std::optional<std::uint64_t> read_uint(const YamlNode& n, std::string_view what, std::uint64_t min, std::uint64_t max,
                                       Diags& d) {
  const std::string expected = max == std::numeric_limits<std::uint64_t>::max()
                                   ? "an integer of at least " + std::to_string(min)
                                   : "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (!scalar_or_report(n, what, expected, d)) return std::nullopt;
  const auto v = parse_uint(n.scalar);
  if (v && *v >= min && *v <= max) return v;
  d.add(n, std::string(what) + ": found " + describe(n) + ", expected " + expected);
  return std::nullopt;
}

std::optional<double> read_double(const YamlNode& n, std::string_view what, Diags& d) {
  if (!scalar_or_report(n, what, "a number", d)) return std::nullopt;
  if (auto v = parse_double(n.scalar)) return v;
  d.add(n, std::string(what) + ": found " + describe(n) + ", expected a number");
  return std::nullopt;
}

std::optional<std::uint64_t> read_size(const YamlNode& n, std::string_view what, Diags& d) {
  constexpr std::string_view kExpected = kSizeExpected;
  if (!scalar_or_report(n, what, kExpected, d)) return std::nullopt;
  if (auto v = config::parse_size(n.scalar)) return v;
  d.add(n, std::string(what) + ": found " + describe(n) + ", expected " + std::string(kExpected));
  return std::nullopt;
}

std::optional<std::chrono::nanoseconds> read_duration(const YamlNode& n, std::string_view what,
                                                      bool bare_is_nanoseconds, Diags& d) {
  constexpr std::string_view kExpected = kDurationExpected;
  if (!scalar_or_report(n, what, kExpected, d)) return std::nullopt;
  if (bare_is_nanoseconds && !n.quoted) {
    if (auto v = parse_uint(n.scalar);
        v && *v <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::chrono::nanoseconds{static_cast<std::int64_t>(*v)};
    }
  }
  if (auto v = config::parse_duration(n.scalar)) return v;
  d.add(n, std::string(what) + ": found " + describe(n) + ", expected " + std::string(kExpected));
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> read_millis(const YamlNode& n, std::string_view what, Diags& d) {
  const auto v = read_duration(n, what, false, d);
  if (!v) return std::nullopt;
  const auto ms = to_millis(*v);
  if (!ms) {
    d.add(n, std::string(what) + ": found " + describe(n) + ", expected 0 or at least 1ms");
    return std::nullopt;
  }
  return ms;
}

// ---------------------------------------------------------------- environment

Position position_at(std::string_view text, std::size_t offset, std::string_view filename) {
  Position p{std::string(filename), 1, 1};
  offset = std::min(offset, text.size());
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++p.line;
      p.column = 1;
    } else {
      ++p.column;
    }
  }
  return p;
}

namespace {

bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// Where the reference `ref` (the k-th "${" of a scalar) sits in the source:
// the scalar's own text starts at node.offset, so search from there.
Position reference_position(const YamlNode& node, std::string_view text, std::size_t k) {
  std::size_t at = node.offset;
  for (std::size_t seen = 0;; ++seen) {
    const std::size_t found = text.find("${", at);
    if (found == std::string_view::npos) return node.position;
    if (seen == k) return position_at(text, found, node.position.file);
    at = found + 2;
  }
}

void expand_scalar(YamlNode& node, std::string_view text, const EnvLookup& env, Diags& d) {
  const std::string& in = node.scalar;
  if (in.find('$') == std::string::npos) return;
  std::string out;
  std::size_t reference = 0;  // index of the "${" among those in the scalar's source text
  for (std::size_t i = 0; i < in.size();) {
    if (in.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      ++reference;
      continue;
    }
    if (in.compare(i, 2, "${") != 0) {
      out += in[i++];
      continue;
    }
    const Position at = reference_position(node, text, reference++);
    const std::size_t close = in.find('}', i + 2);
    if (close == std::string::npos) {
      d.add(at, "found " + quote(in.substr(i)) + " without a closing '}', expected ${VAR} or ${VAR:-default}");
      node.poisoned = true;
      return;
    }
    const std::string body = in.substr(i + 2, close - i - 2);
    std::size_t n = 0;
    while (n < body.size() && (n == 0 ? is_name_start(body[n]) : is_name_char(body[n]))) ++n;
    const std::string name = body.substr(0, n);
    const std::string rest = body.substr(n);
    if (name.empty() || (!rest.empty() && rest.compare(0, 2, ":-") != 0)) {
      d.add(at, "found " + quote("${" + body + "}") +
                    ", expected ${VAR} or ${VAR:-default} with VAR made of letters, digits and '_'");
      node.poisoned = true;
      i = close + 1;
      continue;
    }
    const auto value = env ? env(name) : std::nullopt;
    if (value) {
      out += *value;
    } else if (!rest.empty()) {
      out += rest.substr(2);
    } else {
      d.add(at, "found " + quote("${" + name + "}") + " but " + name +
                    " is not set, expected it set in the environment or a default like ${" + name + ":-value}");
      node.poisoned = true;
    }
    i = close + 1;
  }
  node.scalar = std::move(out);
}

}  // namespace

void expand_env(YamlNode& root, std::string_view text, const EnvLookup& env, Diags& d) {
  switch (root.kind) {
    case YamlNode::Kind::kScalar:
      expand_scalar(root, text, env, d);
      break;
    case YamlNode::Kind::kSequence:
      for (auto& item : root.items) expand_env(item, text, env, d);
      break;
    case YamlNode::Kind::kMap:
      for (auto& [key, value] : root.entries) expand_env(value, text, env, d);
      break;
    case YamlNode::Kind::kNull:
      break;
  }
}

}  // namespace ringpipe::config::detail
