// The mapping matcher: a trie of glob segments (statsd_exporter's FSM), the
// regex rules in file order, and a bounded cache (lru or random eviction) in
// front of both.
// Regexes are RE2 (Go's syntax and semantics, time linear in the name, no
// recursion), so no name a client sends can stall or crash the matcher.

#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>

#include "flat_index.hpp"
#include "hash.hpp"
#include "ringpipe/processors/mapping.hpp"

namespace ringpipe::processors {
namespace {

constexpr std::uint32_t kNoNode = UINT32_MAX;
constexpr std::uint32_t kNoEntry = UINT32_MAX;

// Memory one compiled regex may hold (program and DFA caches); past it the
// DFA restarts or RE2 falls back to its NFA, still linear. A pattern whose
// program alone does not fit is refused. config/src/mapping.cpp validates
// with the same budget, so a file it accepts compiles here.
constexpr std::int64_t kRegexMaxMemBytes = 2 << 20;

struct TemplatePart {
  std::string literal;
  int capture = -1;  // >= 0: substitute this capture
};
using Template = std::vector<TemplatePart>;

bool name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// The reference that starts with the '$' at t[i]: $name or ${name}, name a
// run of letters, digits and '_' (as long as possible). Returns the name and
// where the reference ends, or an empty name when that '$' starts none.
struct TemplateRef {
  std::string_view name;
  std::size_t end = 0;
};
TemplateRef scan_ref(std::string_view t, std::size_t i) noexcept {
  std::size_t j = i + 1;
  const bool brace = j < t.size() && t[j] == '{';
  if (brace) ++j;
  const std::size_t start = j;
  while (j < t.size() && name_char(t[j])) ++j;
  const std::string_view ref = t.substr(start, j - start);
  if (ref.empty() || (brace && (j >= t.size() || t[j] != '}'))) return {};
  return {ref, brace ? j + 1 : j};
}

// "$1", "${1}": a capture; a name that is not a number expands to nothing
// (as statsd_exporter's formatter does), "$" alone stays literal.
Template parse_template(std::string_view t) {
  Template out;
  std::string lit;
  for (std::size_t i = 0; i < t.size();) {
    if (t[i] != '$') {
      lit.push_back(t[i++]);
      continue;
    }
    const auto [ref, j] = scan_ref(t, i);
    if (ref.empty()) {
      lit.push_back(t[i++]);
      continue;
    }
    if (!lit.empty()) out.push_back(TemplatePart{std::move(lit), -1});
    lit.clear();
    int idx = -2;  // expands to nothing
    if (std::all_of(ref.begin(), ref.end(), [](char c) { return c >= '0' && c <= '9'; }) && ref.size() < 6) {
      idx = std::stoi(std::string(ref));
    }
    out.push_back(TemplatePart{{}, idx});
    i = j;
  }
  if (!lit.empty()) out.push_back(TemplatePart{std::move(lit), -1});
  return out;
}

// A regex rule's template, as Go's Regexp.Expand (statsd_exporter's
// ExpandString) reads it: $$ is '$'; $name or ${name} with name a run of
// letters, digits and '_' (taken as long as possible: $1x is ${1x}); a name
// of digits without a leading zero is a group number, any other a group
// name; an unknown number or name expands to nothing; a '$' that starts no
// reference stays literal.
Template parse_regex_template(std::string_view t, const re2::RE2& re) {
  Template out;
  std::string lit;
  const auto flush = [&] {
    if (!lit.empty()) out.push_back(TemplatePart{std::move(lit), -1});
    lit.clear();
  };
  for (std::size_t i = 0; i < t.size();) {
    if (t[i] != '$') {
      lit.push_back(t[i++]);
      continue;
    }
    if (i + 1 < t.size() && t[i + 1] == '$') {
      lit.push_back('$');
      i += 2;
      continue;
    }
    const auto [ref, j] = scan_ref(t, i);
    if (ref.empty()) {
      lit.push_back(t[i++]);
      continue;
    }
    flush();
    int idx = -2;  // expands to nothing
    const bool number = std::all_of(ref.begin(), ref.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
                        (ref.size() == 1 || ref[0] != '0');
    if (number) {
      if (ref.size() <= 9) {
        const int n = std::stoi(std::string(ref));
        if (n <= re.NumberOfCapturingGroups()) idx = n;
      }
    } else {
      const auto& named = re.NamedCapturingGroups();
      if (const auto it = named.find(std::string(ref)); it != named.end()) idx = it->second;
    }
    out.push_back(TemplatePart{{}, idx});
    i = j;
  }
  flush();
  return out;
}

// 1 + the highest group a template refers to (0: none), so a match extracts
// only the groups it expands.
int groups_used(const Template& t) noexcept {
  int n = 0;
  for (const TemplatePart& p : t) n = std::max(n, p.capture + 1);
  return n;
}

void expand(const Template& t, std::span<const std::string_view> caps, std::string& out) {
  out.clear();
  for (const TemplatePart& p : t) {
    if (p.capture == -1) {
      out += p.literal;
    } else if (p.capture >= 0 && static_cast<std::size_t>(p.capture) < caps.size()) {
      out += caps[static_cast<std::size_t>(p.capture)];
    }
  }
}

bool valid_label_name(std::string_view n) noexcept {
  if (n.empty() || (n[0] >= '0' && n[0] <= '9')) return false;
  return std::all_of(n.begin(), n.end(), name_char);
}

std::vector<std::string_view> split_dots(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t dot = s.find('.', start);
    if (dot == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, dot - start));
    start = dot + 1;
  }
}

bool class_matches(MatchMetricType m, MatchClass c) noexcept {
  switch (m) {
    case MatchMetricType::kAny:
      return true;
    case MatchMetricType::kCounter:
      return c == MatchClass::kCounter;
    case MatchMetricType::kGauge:
      return c == MatchClass::kGauge;
    case MatchMetricType::kObserver:
      return c == MatchClass::kObserver;
  }
  return false;
}

}  // namespace

struct Matcher::Impl {
  struct Rule {
    CompiledRule pub;
    MatchType type;
    MatchMetricType mmt;
    Template name;
    std::vector<std::pair<std::string, Template>> labels;
    std::unique_ptr<re2::RE2> re;  // regex rules only
    int groups = 0;                // groups to extract: 1 + the highest one the templates use
  };
  struct Node {
    std::vector<std::pair<std::string, std::uint32_t>> children;  // sorted by segment
    std::uint32_t star = kNoNode;
    std::int32_t result = -1;             // rule index
    std::int32_t min_result = INT32_MAX;  // smallest rule index below (ordering prune)
    std::uint32_t min_rem = UINT32_MAX;
    std::uint32_t max_rem = 0;
  };
  struct Entry {
    std::string key;
    std::uint64_t hash = 0;
    MatchClass cls = MatchClass::kCounter;
    std::int32_t rule = -1;
    std::string name;
    std::vector<std::pair<std::string, std::string>> labels;
    std::size_t label_count = 0;
    std::uint32_t prev = kNoEntry;
    std::uint32_t next = kNoEntry;
  };

  MappingDefaults defaults;
  std::vector<Rule> rules;
  std::vector<std::uint32_t> regex_rules;
  std::vector<Node> nodes;
  std::uint32_t roots[3] = {kNoNode, kNoNode, kNoNode};
  bool has_globs = false;
  bool ordering_disabled = false;
  CompiledRule unmapped;

  std::size_t cache_cap = 0;
  bool cache_random = false;
  std::uint64_t evict_rng = 0x9e3779b97f4a7c15ULL;  // xorshift64 state for random eviction
  std::vector<Entry> entries;                       // entries[cache_cap] is scratch when the cache is off
  detail::FlatIndex index;
  std::uint32_t head = kNoEntry;
  std::uint32_t tail = kNoEntry;
  MatcherStats stats;

  // Scratch, reused so a miss allocates only while strings grow.
  std::vector<std::string_view> segs;
  std::vector<std::string_view> caps;
  std::vector<std::string_view> best_caps;
  std::vector<re2::StringPiece> regex_groups;
  std::vector<std::string_view> regex_cap_views;

  std::uint32_t child(const Node& n, std::string_view seg) const noexcept {
    auto it = std::lower_bound(n.children.begin(), n.children.end(), seg,
                               [](const auto& a, std::string_view b) { return std::string_view(a.first) < b; });
    return (it != n.children.end() && it->first == seg) ? it->second : kNoNode;
  }

  void search(std::uint32_t node, std::size_t i, std::int32_t& best, bool& done) {
    const Node& n = nodes[node];
    if (done || (best >= 0 && n.min_result >= best)) return;
    if (i == segs.size()) {
      if (n.result >= 0 && (best < 0 || n.result < best)) {
        best = n.result;
        best_caps = caps;
        if (ordering_disabled) done = true;
      }
      return;
    }
    const auto rem = static_cast<std::uint32_t>(segs.size() - i - 1);
    const std::uint32_t exact = child(n, segs[i]);
    if (exact != kNoNode && rem >= nodes[exact].min_rem && rem <= nodes[exact].max_rem) {
      search(exact, i + 1, best, done);
    }
    const std::uint32_t star = nodes[node].star;
    if (star != kNoNode && rem >= nodes[star].min_rem && rem <= nodes[star].max_rem) {
      caps.push_back(segs[i]);
      search(star, i + 1, best, done);
      caps.pop_back();
    }
  }

  void add_glob(std::uint32_t rule_index, const std::vector<std::string_view>& fields, MatchMetricType mmt) {
    for (int c = 0; c < 3; ++c) {
      if (!class_matches(mmt, static_cast<MatchClass>(c))) continue;
      std::uint32_t cur = roots[c];
      nodes[cur].min_result = std::min(nodes[cur].min_result, static_cast<std::int32_t>(rule_index));
      for (std::size_t i = 0; i < fields.size(); ++i) {
        std::uint32_t next;
        if (fields[i] == "*") {
          next = nodes[cur].star;
          if (next == kNoNode) {
            next = static_cast<std::uint32_t>(nodes.size());
            nodes.emplace_back();
            nodes[cur].star = next;
          }
        } else {
          next = child(nodes[cur], fields[i]);
          if (next == kNoNode) {
            next = static_cast<std::uint32_t>(nodes.size());
            nodes.emplace_back();
            auto& ch = nodes[cur].children;
            auto it = std::lower_bound(ch.begin(), ch.end(), fields[i],
                                       [](const auto& a, std::string_view b) { return std::string_view(a.first) < b; });
            ch.insert(it, {std::string(fields[i]), next});
          }
        }
        const auto rem = static_cast<std::uint32_t>(fields.size() - i - 1);
        Node& nn = nodes[next];
        nn.min_rem = std::min(nn.min_rem, rem);
        nn.max_rem = std::max(nn.max_rem, rem);
        nn.min_result = std::min(nn.min_result, static_cast<std::int32_t>(rule_index));
        cur = next;
      }
      if (nodes[cur].result < 0) nodes[cur].result = static_cast<std::int32_t>(rule_index);
    }
  }

  // Finds the rule and fills e (rule, name, labels).
  void compute(std::string_view name, MatchClass cls, Entry& e) {
    e.rule = -1;
    e.label_count = 0;
    e.name.clear();
    std::span<const std::string_view> captures;
    if (has_globs && roots[static_cast<int>(cls)] != kNoNode) {
      segs.clear();
      std::size_t start = 0;
      for (;;) {
        const std::size_t dot = name.find('.', start);
        if (dot == std::string_view::npos) {
          segs.push_back(name.substr(start));
          break;
        }
        segs.push_back(name.substr(start, dot - start));
        start = dot + 1;
      }
      caps.clear();
      best_caps.clear();
      caps.push_back({});  // $0 is empty for globs
      std::int32_t best = -1;
      bool done = false;
      search(roots[static_cast<int>(cls)], 0, best, done);
      if (best >= 0) {
        e.rule = best;
        captures = best_caps;
      }
    }
    if (e.rule < 0) {
      for (const std::uint32_t ri : regex_rules) {
        const Rule& r = rules[ri];
        if (!class_matches(r.mmt, cls)) continue;
        // Unanchored and leftmost-first, as Go's FindStringSubmatchIndex.
        const auto groups = static_cast<std::size_t>(r.groups);
        regex_groups.resize(groups);
        if (!r.re->Match(re2::StringPiece(name.data(), name.size()), 0, name.size(), re2::RE2::UNANCHORED,
                         regex_groups.data(), r.groups)) {
          continue;
        }
        regex_cap_views.resize(groups);
        for (std::size_t k = 0; k < groups; ++k) {
          // A group that took no part in the match expands to nothing.
          const re2::StringPiece g = regex_groups[k];
          regex_cap_views[k] = g.data() == nullptr ? std::string_view{} : std::string_view(g.data(), g.size());
        }
        e.rule = static_cast<std::int32_t>(ri);
        captures = regex_cap_views;
        break;
      }
    }
    if (e.rule < 0) return;
    const Rule& r = rules[static_cast<std::size_t>(e.rule)];
    if (r.pub.action == RuleAction::kDrop) return;
    expand(r.name, captures, e.name);
    if (e.labels.size() < r.labels.size()) e.labels.resize(r.labels.size());
    for (std::size_t k = 0; k < r.labels.size(); ++k) {
      e.labels[k].first.assign(r.labels[k].first);
      expand(r.labels[k].second, captures, e.labels[k].second);
    }
    e.label_count = r.labels.size();
  }

  MatchResult result_of(const Entry& e) const noexcept {
    MatchResult res;
    if (e.rule >= 0) {
      res.rule = &rules[static_cast<std::size_t>(e.rule)].pub;
      res.name = e.name;
      res.labels = std::span<const std::pair<std::string, std::string>>(e.labels.data(), e.label_count);
    }
    return res;
  }

  void unlink(std::uint32_t i) noexcept {
    Entry& e = entries[i];
    if (e.prev != kNoEntry)
      entries[e.prev].next = e.next;
    else
      head = e.next;
    if (e.next != kNoEntry)
      entries[e.next].prev = e.prev;
    else
      tail = e.prev;
    e.prev = e.next = kNoEntry;
  }
  void push_front(std::uint32_t i) noexcept {
    Entry& e = entries[i];
    e.prev = kNoEntry;
    e.next = head;
    if (head != kNoEntry) entries[head].prev = i;
    head = i;
    if (tail == kNoEntry) tail = i;
  }
};

Matcher::Matcher(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Matcher::Matcher(Matcher&&) noexcept = default;
Matcher& Matcher::operator=(Matcher&&) noexcept = default;
Matcher::~Matcher() = default;

Result<Matcher> Matcher::create(const MappingConfig& config) {
  auto impl = std::make_unique<Impl>();
  impl->defaults = config.defaults;
  impl->ordering_disabled = config.defaults.glob_disable_ordering;
  const MappingDefaults& d = config.defaults;
  if (d.age_buckets == 0 || d.max_age.count() <= 0)
    return invalid("mapping defaults: max_age and age_buckets must be > 0");

  auto resolve = [&](CompiledRule& c, const MappingRule* r) -> Status {
    c.action = r ? r->action : RuleAction::kMap;
    c.honor_labels = r && r->honor_labels;
    c.scale = r ? r->scale : std::nullopt;
    c.ttl = (r && r->ttl) ? *r->ttl : d.ttl;
    const ObserverType ot = (r && r->observer_type != ObserverType::kDefault) ? r->observer_type : d.observer_type;
    c.observer_type = ot == ObserverType::kHistogram ? ObserverType::kHistogram : ObserverType::kSummary;
    c.buckets = (r && !r->buckets.empty()) ? r->buckets : d.buckets;
    const auto& qs = (r && !r->quantiles.empty()) ? r->quantiles : d.quantiles;
    c.quantiles.clear();
    for (const QuantileSpec& q : qs) {
      if (!(q.quantile >= 0 && q.quantile <= 1)) return invalid("quantile outside [0, 1]");
      if (!(q.error >= 0 && q.error < 1)) return invalid("quantile error outside [0, 1)");
      c.quantiles.push_back(q);
    }
    c.max_age = (r && r->max_age) ? *r->max_age : d.max_age;
    c.age_buckets = (r && r->age_buckets) ? *r->age_buckets : d.age_buckets;
    if (c.age_buckets == 0 || c.age_buckets > 64 || c.max_age.count() <= 0) {
      return invalid("max_age must be > 0 and age_buckets in 1..64");
    }
    for (std::size_t i = 0; i < c.buckets.size(); ++i) {
      if (!std::isfinite(c.buckets[i]) || (i > 0 && c.buckets[i] <= c.buckets[i - 1])) {
        return invalid("buckets must be finite and strictly increasing");
      }
    }
    if (c.buckets.empty()) return invalid("a histogram needs at least one bucket");
    c.native_bucket_factor = (r && r->native_bucket_factor != 0) ? r->native_bucket_factor : d.native_bucket_factor;
    c.native_max_buckets = (r && r->native_max_buckets != 0) ? r->native_max_buckets : d.native_max_buckets;
    if (c.native_bucket_factor != 0 && !(c.native_bucket_factor > 1 && std::isfinite(c.native_bucket_factor))) {
      return invalid("native_histogram_bucket_factor must be 0 (none) or a finite factor > 1");
    }
    c.help = r ? r->help : std::string{};
    c.match = r ? r->match : std::string{};
    return {};
  };

  if (auto st = resolve(impl->unmapped, nullptr); !st) return tl::unexpected(st.error());
  impl->unmapped.index = UINT32_MAX;

  for (int c = 0; c < 3; ++c) {
    impl->roots[c] = static_cast<std::uint32_t>(impl->nodes.size());
    impl->nodes.emplace_back();
  }
  impl->rules.reserve(config.rules.size());
  for (std::size_t i = 0; i < config.rules.size(); ++i) {
    const MappingRule& r = config.rules[i];
    const std::string where = "mapping rule " + std::to_string(i + 1) + " (" + r.match + "): ";
    Impl::Rule rule;
    rule.pub.index = static_cast<std::uint32_t>(i);
    if (auto st = resolve(rule.pub, &r); !st) return invalid(where + st.error().context);
    rule.type = r.match_type_set.value_or(r.match_type == MatchType::kRegex ? MatchType::kRegex : d.match_type);
    rule.mmt = r.match_metric_type;
    if (r.match.empty()) return invalid(where + "empty match");
    if (r.action != RuleAction::kDrop && r.name.empty())
      return invalid(where + "metric mapping didn't set a metric name");
    for (const auto& [k, v] : r.labels) {
      if (!valid_label_name(k)) return invalid(where + "invalid label name " + k);
    }
    if (rule.type == MatchType::kGlob) {
      rule.name = parse_template(r.name);
      for (const auto& [k, v] : r.labels) rule.labels.emplace_back(k, parse_template(v));
      const auto fields = split_dots(r.match);
      for (std::string_view f : fields) {
        if (f.empty() || (f != "*" && f.find('*') != std::string_view::npos)) {
          return invalid(where + "invalid glob: '*' must be a whole dot-separated segment");
        }
      }
      impl->add_glob(static_cast<std::uint32_t>(i), fields, rule.mmt);
      impl->has_globs = true;
    } else {
      re2::RE2::Options opts;
      opts.set_log_errors(false);
      opts.set_max_mem(kRegexMaxMemBytes);
      rule.re = std::make_unique<re2::RE2>(re2::StringPiece(r.match.data(), r.match.size()), opts);
      if (!rule.re->ok()) return invalid(where + "invalid regex: " + rule.re->error());
      rule.name = parse_regex_template(r.name, *rule.re);
      rule.groups = groups_used(rule.name);
      for (const auto& [k, v] : r.labels) {
        rule.labels.emplace_back(k, parse_regex_template(v, *rule.re));
        rule.groups = std::max(rule.groups, groups_used(rule.labels.back().second));
      }
      if (r.action == RuleAction::kDrop) rule.groups = 0;
      impl->regex_rules.push_back(static_cast<std::uint32_t>(i));
    }
    impl->rules.push_back(std::move(rule));
  }
  impl->cache_cap = config.cache_size;
  impl->cache_random = config.cache_random;
  impl->entries.resize(impl->cache_cap + 1);
  impl->index.reserve(impl->cache_cap);
  return Matcher(std::move(impl));
}

MatchResult Matcher::match(std::string_view name, MatchClass cls) noexcept {
  Impl& m = *impl_;
  // No rules (no mapping file): every name is unmapped. Neither a lookup nor
  // the cache: with many distinct names the cache would miss on every sample.
  if (m.rules.empty()) return {};
  ++m.stats.lookups;
  if (m.cache_cap == 0) {
    Impl::Entry& e = m.entries[0];
    m.compute(name, cls, e);
    return m.result_of(e);
  }
  const std::uint64_t h = detail::hash_mem(name.data(), name.size(), static_cast<std::uint64_t>(cls) + 1);
  const std::uint32_t found = m.index.find(h, [&](std::uint32_t v) {
    const Impl::Entry& e = m.entries[v];
    return e.cls == cls && e.key == name;
  });
  if (found != detail::FlatIndex::kNone) {
    ++m.stats.cache_hits;
    if (!m.cache_random) {  // recency matters only to lru
      m.unlink(found);
      m.push_front(found);
    }
    return m.result_of(m.entries[found]);
  }
  std::uint32_t slot;
  if (m.stats.cache_length < m.cache_cap) {
    slot = static_cast<std::uint32_t>(m.stats.cache_length++);
  } else {
    if (m.cache_random) {
      m.evict_rng ^= m.evict_rng << 13;
      m.evict_rng ^= m.evict_rng >> 7;
      m.evict_rng ^= m.evict_rng << 17;
      slot = static_cast<std::uint32_t>(m.evict_rng % m.cache_cap);
    } else {
      slot = m.tail;
    }
    m.index.erase(m.entries[slot].hash, slot);
    m.unlink(slot);
  }
  Impl::Entry& e = m.entries[slot];
  e.key.assign(name);
  e.hash = h;
  e.cls = cls;
  m.compute(name, cls, e);
  m.index.insert(h, slot);
  m.push_front(slot);
  return m.result_of(e);
}

const MappingDefaults& Matcher::defaults() const noexcept { return impl_->defaults; }
MatcherStats Matcher::stats() const noexcept { return impl_->stats; }
const CompiledRule& Matcher::unmapped_rule() const noexcept { return impl_->unmapped; }
std::size_t Matcher::rule_count() const noexcept { return impl_->rules.size(); }
const CompiledRule& Matcher::rule(std::size_t index) const noexcept { return impl_->rules[index].pub; }

}  // namespace ringpipe::processors
