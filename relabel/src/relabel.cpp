#include "ringpipe/relabel/relabel.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <utility>

#include <openssl/evp.h>
#include <re2/re2.h>

#include "ringpipe/common/utf8.hpp"

namespace ringpipe::relabel {

namespace {

// The budget config/ and the processors give RE2 for mapping rules.
constexpr std::int64_t kRegexMaxMemBytes = 2 << 20;
// Submatches read from the stack; more (a template naming group 16 or above) use the heap.
constexpr std::size_t kStackGroups = 16;

bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
// Go's extract() takes Unicode letters and digits; a byte of a multi-byte
// UTF-8 character stands in for them here.
bool is_name_byte(char c) noexcept { return is_alpha(c) || is_digit(c) || static_cast<unsigned char>(c) >= 0x80; }

char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
char ascii_upper(char c) noexcept { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

// Go (1.22+) also names groups as (?<name>...); RE2 of Debian 12 knows only
// (?P<name>...). Rewrites the former outside character classes and escapes.
std::string go_to_re2(std::string_view regex) {
  std::string out;
  out.reserve(regex.size() + 4);
  bool in_class = false;
  for (std::size_t i = 0; i < regex.size(); ++i) {
    const char c = regex[i];
    if (c == '\\' && i + 1 < regex.size()) {
      out += c;
      out += regex[++i];
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < regex.size() && regex[i + 1] == '^') out += regex[++i];
      if (i + 1 < regex.size() && regex[i + 1] == ']') out += regex[++i];
      continue;
    }
    if (c == '(' && regex.substr(i, 3) == "(?<" && i + 3 < regex.size() && regex[i + 3] != '=' && regex[i + 3] != '!') {
      out += "(?P<";
      i += 2;
      continue;
    }
    out += c;
  }
  return out;
}

std::unique_ptr<re2::RE2> compile_regex(std::string_view regex) {
  re2::RE2::Options opts;
  opts.set_log_errors(false);
  opts.set_max_mem(kRegexMaxMemBytes);
  const std::string anchored = "^(?s:" + go_to_re2(regex) + ")$";
  return std::make_unique<re2::RE2>(anchored, opts);
}

// Prometheus' relabelTargetLegacy: a label name in which $1, ${1}, $name and
// ${name} stand for parts still to be expanded.
bool valid_target_template(std::string_view s) {
  static const re2::RE2 re(R"(^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$)");
  return re2::RE2::FullMatch(re2::StringPiece(s.data(), s.size()), re);
}

bool has_var(std::string_view s) noexcept { return s.find('$') != std::string_view::npos; }

// A replacement or target template, cut as Go's Regexp.Expand reads it: text
// copied as is, and references to groups (resolved to numbers at compile
// time; a group that does not exist expands to nothing).
struct Piece {
  std::string text;
  int group = -1;  // -1: text only
};

std::vector<Piece> compile_template(std::string_view t, const re2::RE2& re) {
  std::vector<Piece> pieces;
  std::string text;
  const int groups = re.NumberOfCapturingGroups();
  const auto& named = re.NamedCapturingGroups();
  while (!t.empty()) {
    const std::size_t dollar = t.find('$');
    if (dollar == std::string_view::npos) break;
    text.append(t.substr(0, dollar));
    t.remove_prefix(dollar + 1);
    if (!t.empty() && t[0] == '$') {  // $$ is a literal $
      text += '$';
      t.remove_prefix(1);
      continue;
    }
    // Go's extract(): a name of letters, digits and '_', optionally in braces.
    std::string_view s = t;
    const bool brace = !s.empty() && s[0] == '{';
    if (brace) s.remove_prefix(1);
    std::size_t n = 0;
    while (n < s.size() && is_name_byte(s[n])) ++n;
    if (n == 0 || (brace && (n >= s.size() || s[n] != '}'))) {
      text += '$';  // malformed: the $ is text
      continue;
    }
    const std::string_view name = s.substr(0, n);
    t = s.substr(n + (brace ? 1 : 0));
    int num = 0;
    for (const char c : name) {
      if (!is_digit(c) || num >= 100'000'000) {
        num = -1;
        break;
      }
      num = num * 10 + (c - '0');
    }
    if (name.size() > 1 && name[0] == '0') num = -1;
    int group = -1;
    if (num >= 0) {
      if (num <= groups) group = num;
    } else if (auto it = named.find(std::string(name)); it != named.end()) {
      group = it->second;
    }
    pieces.push_back(Piece{std::move(text), group});
    text.clear();
  }
  text.append(t);
  if (!text.empty()) pieces.push_back(Piece{std::move(text), -1});
  return pieces;
}

int groups_needed(const std::vector<Piece>& pieces) noexcept {
  int n = 0;
  for (const Piece& p : pieces) n = std::max(n, p.group + 1);
  return n;
}

void expand(const std::vector<Piece>& pieces, std::span<const re2::StringPiece> groups, std::string& out) {
  out.clear();
  for (const Piece& p : pieces) {
    out += p.text;
    if (p.group >= 0 && static_cast<std::size_t>(p.group) < groups.size()) {
      const re2::StringPiece& g = groups[static_cast<std::size_t>(p.group)];
      if (g.data() != nullptr) out.append(g.data(), g.size());
    }
  }
}

struct CompiledRule {
  RuleSpec spec;
  std::unique_ptr<re2::RE2> re;
  std::vector<Piece> target;
  std::vector<Piece> replacement;
  int groups = 0;  // submatches the templates read (0: match only)
};

}  // namespace

struct Rules::Impl {
  std::vector<RuleSpec> specs;
  std::vector<CompiledRule> rules;
};

std::string_view action_name(Action a) noexcept {
  switch (a) {
    case Action::kReplace:
      return "replace";
    case Action::kKeep:
      return "keep";
    case Action::kDrop:
      return "drop";
    case Action::kKeepEqual:
      return "keepequal";
    case Action::kDropEqual:
      return "dropequal";
    case Action::kHashMod:
      return "hashmod";
    case Action::kLabelMap:
      return "labelmap";
    case Action::kLabelDrop:
      return "labeldrop";
    case Action::kLabelKeep:
      return "labelkeep";
    case Action::kLowercase:
      return "lowercase";
    case Action::kUppercase:
      return "uppercase";
  }
  return "unknown";
}

std::optional<Action> parse_action(std::string_view text) noexcept {
  static constexpr std::array kAll{Action::kReplace,   Action::kKeep,      Action::kDrop,     Action::kKeepEqual,
                                   Action::kDropEqual, Action::kHashMod,   Action::kLabelMap, Action::kLabelDrop,
                                   Action::kLabelKeep, Action::kLowercase, Action::kUppercase};
  for (const Action a : kAll) {
    const std::string_view name = action_name(a);
    if (name.size() == text.size() &&
        std::equal(name.begin(), name.end(), text.begin(), [](char x, char y) { return x == ascii_lower(y); })) {
      return a;
    }
  }
  return std::nullopt;
}

bool valid_label_name(std::string_view name) noexcept {
  if (name.empty() || is_digit(name[0])) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return is_alpha(c) || is_digit(c); });
}

bool valid_metric_name(std::string_view name) noexcept {
  if (name.empty() || is_digit(name[0])) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return is_alpha(c) || is_digit(c) || c == ':'; });
}

std::optional<Problem> validate(const RuleSpec& r) {
  const std::string action(action_name(r.action));
  const auto problem = [](std::string key, std::string message) {
    return std::optional<Problem>(Problem{std::move(key), std::move(message)});
  };
  const auto invalid = [&](std::string_view key, std::string_view value) {
    return problem(std::string(key),
                   "\"" + std::string(value) + "\" is invalid '" + std::string(key) + "' for " + action + " action");
  };
  for (const std::string& l : r.source_labels) {
    if (l.empty() || !common::valid_utf8(l)) return problem("source_labels", "\"" + l + "\" is not a valid label name");
  }
  if (const auto re = compile_regex(r.regex); !re->ok()) {
    return problem("regex", "\"" + r.regex + "\" does not compile: " + re->error());
  }
  const bool needs_target = r.action == Action::kReplace || r.action == Action::kHashMod ||
                            r.action == Action::kLowercase || r.action == Action::kUppercase ||
                            r.action == Action::kKeepEqual || r.action == Action::kDropEqual;
  const bool plain_target = r.action == Action::kLowercase || r.action == Action::kUppercase ||
                            r.action == Action::kKeepEqual || r.action == Action::kDropEqual;
  if (r.modulus == 0 && r.action == Action::kHashMod) {
    return problem("modulus", "relabel configuration for hashmod requires non-zero modulus");
  }
  if (needs_target && r.target_label.empty()) {
    return problem("target_label", "relabel configuration for " + action + " action requires 'target_label' value");
  }
  if (r.action == Action::kReplace) {
    const bool ok = has_var(r.target_label) ? valid_target_template(r.target_label) : valid_label_name(r.target_label);
    if (!ok) return invalid("target_label", r.target_label);
  }
  if (plain_target && !valid_label_name(r.target_label)) return invalid("target_label", r.target_label);
  if (plain_target && r.replacement != kDefaultReplacement) {
    return problem("replacement", "'replacement' can not be set for " + action + " action");
  }
  if (r.action == Action::kLabelMap && !valid_target_template(r.replacement)) {
    return invalid("replacement", r.replacement);
  }
  if (r.action == Action::kHashMod && !valid_label_name(r.target_label)) return invalid("target_label", r.target_label);
  if (r.action == Action::kKeepEqual || r.action == Action::kDropEqual) {
    if (r.regex != kDefaultRegex || r.modulus != 0 || r.separator != kDefaultSeparator ||
        r.replacement != kDefaultReplacement) {
      return problem(r.regex != kDefaultRegex           ? "regex"
                     : r.modulus != 0                   ? "modulus"
                     : r.separator != kDefaultSeparator ? "separator"
                                                        : "replacement",
                     action + " action requires only 'source_labels' and `target_label`, and no other fields");
    }
  }
  if (r.action == Action::kLabelDrop || r.action == Action::kLabelKeep) {
    if (!r.source_labels.empty() || !r.target_label.empty() || r.modulus != 0 || r.separator != kDefaultSeparator ||
        r.replacement != kDefaultReplacement) {
      const char* key = !r.source_labels.empty()           ? "source_labels"
                        : !r.target_label.empty()          ? "target_label"
                        : r.modulus != 0                   ? "modulus"
                        : r.separator != kDefaultSeparator ? "separator"
                                                           : "replacement";
      return problem(key, action + " action requires only 'regex', and no other fields");
    }
  }
  return std::nullopt;
}

tl::expected<Rules, CompileError> Rules::compile(std::vector<RuleSpec> specs) {
  Rules out;
  if (specs.empty()) return out;
  auto impl = std::make_shared<Impl>();
  impl->rules.reserve(specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (auto p = validate(specs[i])) return tl::unexpected(CompileError{i, std::move(*p)});
    CompiledRule c;
    c.spec = specs[i];
    c.re = compile_regex(c.spec.regex);
    if (c.spec.action == Action::kReplace) c.target = compile_template(c.spec.target_label, *c.re);
    if (c.spec.action == Action::kReplace || c.spec.action == Action::kLabelMap) {
      c.replacement = compile_template(c.spec.replacement, *c.re);
    }
    c.groups = std::max(groups_needed(c.target), groups_needed(c.replacement));
    impl->rules.push_back(std::move(c));
  }
  impl->specs = std::move(specs);
  out.impl_ = std::move(impl);
  return out;
}

std::span<const RuleSpec> Rules::specs() const noexcept {
  if (impl_ == nullptr) return {};
  return impl_->specs;
}

bool operator==(const Rules& a, const Rules& b) noexcept {
  const auto x = a.specs();
  const auto y = b.specs();
  return std::equal(x.begin(), x.end(), y.begin(), y.end());
}

std::size_t LabelSet::find(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < size_; ++i) {
    if (items_[i].name == name) return i;
  }
  return size_;
}

std::string_view LabelSet::get(std::string_view name) const noexcept {
  const std::size_t i = find(name);
  return i < size_ ? std::string_view(items_[i].value) : std::string_view();
}

void LabelSet::set(std::string_view name, std::string_view value) {
  if (value.empty()) {
    remove(name);
    return;
  }
  const std::size_t i = find(name);
  if (i < size_) {
    items_[i].value.assign(value);
    return;
  }
  if (size_ == items_.size()) items_.emplace_back();
  items_[size_].name.assign(name);
  items_[size_].value.assign(value);
  ++size_;
}

void LabelSet::remove(std::string_view name) noexcept {
  const std::size_t i = find(name);
  if (i == size_) return;
  --size_;
  if (i != size_) std::swap(items_[i], items_[size_]);
}

void LabelSet::sort() noexcept {
  std::sort(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(size_),
            [](const Label& a, const Label& b) { return a.name < b.name; });
}

namespace {

bool matches(const re2::RE2& re, std::string_view s) {
  return re.Match(re2::StringPiece(s.data(), s.size()), 0, s.size(), re2::RE2::ANCHOR_BOTH, nullptr, 0);
}

// Matches and fills `groups` (n of them); false = no match.
bool submatch(const re2::RE2& re, std::string_view s, re2::StringPiece* groups, int n) {
  return re.Match(re2::StringPiece(s.data(), s.size()), 0, s.size(), re2::RE2::ANCHOR_BOTH, groups, n);
}

std::uint64_t hash_mod(std::string_view value, std::uint64_t modulus) {
  std::array<unsigned char, 16> digest{};
  unsigned int len = 0;
  EVP_Digest(value.data(), value.size(), digest.data(), &len, EVP_md5(), nullptr);
  std::uint64_t h = 0;
  for (std::size_t i = 8; i < 16; ++i) h = (h << 8) | digest[i];
  return h % modulus;
}

}  // namespace

bool Rules::apply(LabelSet& ls) const {
  if (impl_ == nullptr) return true;
  for (const CompiledRule& r : impl_->rules) {
    const RuleSpec& s = r.spec;
    std::string& val = ls.joined_;
    val.clear();
    for (std::size_t i = 0; i < s.source_labels.size(); ++i) {
      if (i != 0) val += s.separator;
      val += ls.get(s.source_labels[i]);
    }
    switch (s.action) {
      case Action::kDrop:
        if (matches(*r.re, val)) return false;
        break;
      case Action::kKeep:
        if (!matches(*r.re, val)) return false;
        break;
      case Action::kDropEqual:
        if (ls.get(s.target_label) == val) return false;
        break;
      case Action::kKeepEqual:
        if (ls.get(s.target_label) != val) return false;
        break;
      case Action::kReplace: {
        std::array<re2::StringPiece, kStackGroups> stack;
        std::vector<re2::StringPiece> heap;
        re2::StringPiece* groups = stack.data();
        if (static_cast<std::size_t>(r.groups) > stack.size()) {
          heap.resize(static_cast<std::size_t>(r.groups));
          groups = heap.data();
        }
        if (!submatch(*r.re, val, groups, r.groups)) break;  // no match: no replacement
        const std::span<const re2::StringPiece> g(groups, static_cast<std::size_t>(r.groups));
        expand(r.target, g, ls.target_);
        if (!valid_label_name(ls.target_)) break;
        expand(r.replacement, g, ls.value_);
        ls.set(ls.target_, ls.value_);  // empty: removes the label
        break;
      }
      case Action::kLowercase:
        std::transform(val.begin(), val.end(), val.begin(), ascii_lower);
        ls.set(s.target_label, val);
        break;
      case Action::kUppercase:
        std::transform(val.begin(), val.end(), val.begin(), ascii_upper);
        ls.set(s.target_label, val);
        break;
      case Action::kHashMod: {
        std::array<char, 24> buf{};
        const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), hash_mod(val, s.modulus));
        ls.set(s.target_label, std::string_view(buf.data(), static_cast<std::size_t>(res.ptr - buf.data())));
        break;
      }
      case Action::kLabelMap: {
        // Over the labels as they were before this rule, in name order.
        ls.snapshot_.resize(std::max(ls.snapshot_.size(), ls.size_));
        for (std::size_t i = 0; i < ls.size_; ++i) {
          ls.snapshot_[i].name.assign(ls.items_[i].name);
          ls.snapshot_[i].value.assign(ls.items_[i].value);
        }
        const std::size_t n = ls.size_;
        std::sort(ls.snapshot_.begin(), ls.snapshot_.begin() + static_cast<std::ptrdiff_t>(n),
                  [](const Label& a, const Label& b) { return a.name < b.name; });
        std::array<re2::StringPiece, kStackGroups> stack;
        std::vector<re2::StringPiece> heap;
        re2::StringPiece* groups = stack.data();
        if (static_cast<std::size_t>(r.groups) > stack.size()) {
          heap.resize(static_cast<std::size_t>(r.groups));
          groups = heap.data();
        }
        for (std::size_t i = 0; i < n; ++i) {
          const Label& l = ls.snapshot_[i];
          if (!submatch(*r.re, l.name, groups, r.groups)) continue;
          expand(r.replacement, std::span<const re2::StringPiece>(groups, static_cast<std::size_t>(r.groups)),
                 ls.target_);
          // Prometheus sets whatever the expansion gives; a name the text
          // format cannot carry is not made here.
          if (valid_label_name(ls.target_)) ls.set(ls.target_, l.value);
        }
        break;
      }
      case Action::kLabelDrop:
      case Action::kLabelKeep: {
        const bool keep = s.action == Action::kLabelKeep;
        for (std::size_t i = ls.size_; i-- > 0;) {
          if (matches(*r.re, ls.items_[i].name) != keep) {
            --ls.size_;
            if (i != ls.size_) std::swap(ls.items_[i], ls.items_[ls.size_]);
          }
        }
        break;
      }
    }
  }
  return true;
}

}  // namespace ringpipe::relabel
