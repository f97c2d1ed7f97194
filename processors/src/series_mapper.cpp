#include "series_mapper.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "hash.hpp"

namespace ringpipe::processors::detail {
namespace {

using sample::Kind;

MatchClass class_of(Kind k) noexcept {
  switch (k) {
    case Kind::kCounter:
      return MatchClass::kCounter;
    case Kind::kGauge:
    case Kind::kGaugeDelta:
    case Kind::kSet:
      return MatchClass::kGauge;
    default:
      return MatchClass::kObserver;
  }
}

// UTF-8 as Go's utf8.ValidString accepts it (no overlongs, no surrogates,
// nothing past U+10FFFF): Prometheus refuses a label value that is not.
// True when no byte has its high bit set. Label values are mostly short
// ASCII ("200", "host-12"): at most two loads for up to 16 bytes.
[[gnu::always_inline]] inline bool all_ascii(const unsigned char* p, std::size_t n) noexcept {
  constexpr std::uint64_t kHigh8 = 0x8080808080808080ULL;
  constexpr std::uint32_t kHigh4 = 0x80808080U;
  if (n >= 8) {
    std::uint64_t acc = 0;
    std::uint64_t w;
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
      std::memcpy(&w, p + i, sizeof w);
      acc |= w;
    }
    std::memcpy(&w, p + n - 8, sizeof w);  // the last 8 bytes, overlapping
    return ((acc | w) & kHigh8) == 0;
  }
  if (n >= 4) {
    std::uint32_t a;
    std::uint32_t b;
    std::memcpy(&a, p, sizeof a);
    std::memcpy(&b, p + n - 4, sizeof b);  // overlapping
    return ((a | b) & kHigh4) == 0;
  }
  unsigned acc = 0;
  for (std::size_t i = 0; i < n; ++i) acc |= p[i];
  return (acc & 0x80U) == 0;
}

bool valid_utf8_slow(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* const end = p + s.size();
  while (p < end) {
    while (end - p >= 8) {  // ASCII, eight bytes at a time
      std::uint64_t w;
      std::memcpy(&w, p, sizeof w);
      if ((w & 0x8080808080808080ULL) != 0) break;
      p += 8;
    }
    if (p == end) break;
    const unsigned c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t more = 0;
    unsigned lo = 0x80;
    unsigned hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      more = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      more = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      more = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) <= more || p[1] < lo || p[1] > hi) return false;
    for (std::size_t k = 2; k <= more; ++k) {
      if ((p[k] & 0xC0) != 0x80) return false;
    }
    p += more + 1;
  }
  return true;
}

[[gnu::always_inline]] inline bool valid_utf8(std::string_view s) noexcept {
  return all_ascii(reinterpret_cast<const unsigned char*>(s.data()), s.size()) || valid_utf8_slow(s);
}

std::byte* put_label(std::byte* p, std::string_view k, std::string_view v) noexcept {
  const metric::LabelHeader h{static_cast<std::uint16_t>(k.size()), static_cast<std::uint16_t>(v.size())};
  std::memcpy(p, &h, sizeof h);
  std::memcpy(p + sizeof h, k.data(), k.size());
  std::memcpy(p + sizeof h + k.size(), v.data(), v.size());
  return p + sizeof h + k.size() + v.size();
}

}  // namespace

SeriesMapper::SeriesMapper(Matcher matcher, FamilyRegistry& registry, const EngineOptions& options)
    : matcher_(std::move(matcher)),
      registry_(&registry),
      default_help_(options.default_help),
      family_cache_cap_(std::min<std::size_t>(options.max_families * 2 + 16, kFamilyRef - 1)),
      max_name_bytes_(options.max_name_bytes),
      max_record_bytes_(options.max_record_bytes),
      weighted_sample_rate_(options.weighted_sample_rate) {
  name_.reserve(256);
  keys_.reserve(1024);
  lbls_.reserve(32);
}

// Value and operation of a sample under its rule; false when it is dropped
// (counted). Inlined: both map paths run it for every sample.
[[gnu::always_inline]] inline bool SeriesMapper::value_of(const sample::SampleView& s, const CompiledRule& rule,
                                                          MappedSample& out, FamilyKind& kind) noexcept {
  double scale = rule.scale.value_or(1.0);
  double rate = s.sample_rate;
  if (!(rate > 0.0 && rate <= 1.0)) rate = 1.0;
  out.value = s.value * scale;
  out.weight = 1.0;
  out.member = 0;
  kind = family_kind(s.kind, rule);  // the same kind prefetch_index() guesses
  switch (s.kind) {
    case Kind::kCounter:
      out.op = Op::kAdd;
      out.value /= rate;  // statsd_exporter: value / sampling factor
      if (!std::isfinite(out.value)) {
        ++stats_.dropped_bad_value;
        return false;
      }
      if (out.value < 0) {
        ++stats_.dropped_negative_counter;
        return false;
      }
      break;
    case Kind::kGauge:
      out.op = Op::kSet;
      break;
    case Kind::kGaugeDelta:
      out.op = Op::kAdd;
      break;
    case Kind::kSet:
      out.op = Op::kSetMember;
      out.member = hash_str(s.str_value, 0x5e7);
      break;
    case Kind::kNativeHistogram:  // sample/FORMAT.md
      out.value = 0;
      if (relay_native_) {
        // A relay carries the sample as it came (its native part is the
        // relay's to copy): a Prometheus sample, set, as a gauge is.
        kind = FamilyKind::kGauge;
        out.op = Op::kSet;
      } else {
        // A histogram series that takes each sample whole (take_native).
        out.op = Op::kSetNative;
      }
      break;
    default:
      out.op = Op::kObserve;
      // statsd_exporter observes a sampled observation int(1/rate) times (Go's
      // truncation: @0.3 counts 3); weighted mode observes it once, weight 1/rate.
      out.weight = weighted_sample_rate_ ? 1.0 / rate : std::trunc(1.0 / rate);
      if (!std::isfinite(out.value)) {
        ++stats_.dropped_bad_value;
        return false;
      }
      break;
  }
  return true;
}

bool SeriesMapper::map(const sample::SampleView& s, std::vector<std::byte>& labels, MappedSample& out,
                       const std::uint64_t* name_hint) noexcept {
  ++stats_.samples;
  if (s.name.size() > max_name_bytes_) {  // before mapping: no rule ever sees it
    ++stats_.dropped_name_too_long;
    return false;
  }
  if (run_.valid) {
    if (run_.same(s)) return map_again(s, labels, out);
    run_.valid = false;
    run_.skip = kRunBackoff;
  }
  const MatchClass cls = class_of(s.kind);
  const MatchResult m = matcher_.match(s.name, cls);
  const CompiledRule& rule = m.rule ? *m.rule : matcher_.unmapped_rule();
  if (m.rule && rule.action == RuleAction::kDrop) {
    ++stats_.dropped_by_rule;
    return false;
  }
  if (!m.rule) ++stats_.unmapped;

  // Value and operation.
  FamilyKind kind;
  if (!value_of(s, rule, out, kind)) return false;
  out.spec = m.rule ? m.rule->index + 1 : 0;
  out.ttl_ns = rule.ttl.count();

  // Name and family. A name seen before (as it came, with the same kind and
  // Prometheus family) finds its family at once: escaping and the family
  // lookup below run once per distinct name, not per sample.
  const std::string_view raw = m.rule ? m.name : s.name;
  PromFamily prom;
  std::string_view prom_help;
  if (s.family.type != sample::FamilyType::kNone && raw == s.name) {
    prom = PromFamily{static_cast<std::uint8_t>(s.family.type), s.family.suffix_len, s.family.unit};
    prom_help = s.family.help;
  }
  if (out.op == Op::kSetNative && prom.type != static_cast<std::uint8_t>(sample::FamilyType::kHistogram) &&
      prom.type != static_cast<std::uint8_t>(sample::FamilyType::kGaugeHistogram)) {
    // A rule renamed it: its family would be a StatsD one, whose histograms
    // are observed, not set. Refused before any family is made for it.
    ++stats_.dropped_native_renamed;
    return false;
  }
  const std::uint32_t raw_key = raw_key_of(kind, prom);
  // Unmapped, with the kind its sample kind gives, the name and key are what
  // prefetch_index() hashed.
  const bool hinted = name_hint != nullptr && !m.rule && kind == family_kind(s.kind, rule);
  const std::uint64_t rh = hinted ? *name_hint : raw_hash(raw, raw_key);
  const std::uint32_t ri = raw_index_.find(rh, [&](std::uint32_t v) {
    if ((v & kFamilyRef) != 0) return names_family(registry_->at(v & ~kFamilyRef), raw, raw_key);
    const RawName& r = raw_names_[v];
    return r.key == raw_key && r.raw == raw;
  });
  Resolved fam;
  bool cached = ri != FlatIndex::kNone;
  if (cached) {
    fam = (ri & kFamilyRef) != 0 ? Resolved{&registry_->at(ri & ~kFamilyRef), false}
                                 : Resolved{raw_names_[ri].family, raw_names_[ri].conflict};
  } else {
    fam = resolve_family(raw, kind, prom, prom_help, rule);
    if (fam.family == nullptr) return false;
    if (raw_index_.size() < family_cache_cap_) {
      if (!fam.conflict && fam.family->id < kFamilyRef - 1 && names_family(*fam.family, raw, raw_key)) {
        raw_index_.insert(rh, fam.family->id | kFamilyRef);
      } else {
        raw_index_.insert(rh, static_cast<std::uint32_t>(raw_names_.size()));
        std::string_view kept = fam.family->name();
        if (kept != raw) kept = raw_owned_.add(raw);
        raw_names_.push_back(RawName{kept, fam.family, raw_key, fam.conflict});
      }
      cached = true;
    }
  }
  if (fam.conflict) {
    registry_->count_conflict(*fam.family);
    ++stats_.dropped_conflict;
    return false;
  }
  out.family = fam.family;

  // Labels: tags (names escaped), then the rule's labels (which win unless
  // honor_labels), sorted by name; for a repeated name the last one wins; an
  // empty value means "no label", as in Prometheus. A label Prometheus would
  // refuse (and with it the whole scrape) is removed and counted by reason;
  // the sample is kept.
  const std::string_view owned = kind == FamilyKind::kHistogram ? std::string_view("le")
                                 : kind == FamilyKind::kSummary ? std::string_view("quantile")
                                                                : std::string_view();
  const auto admit = [&](std::string_view k, std::string_view v) noexcept {
    if (v.empty()) return true;  // removes an earlier value of k, and is itself never exposed
    if (k.empty() || !valid_utf8(v)) {
      ++stats_.labels_dropped_invalid;
      return false;
    }
    if (k.size() >= 2 && k[0] == '_' && k[1] == '_') {
      ++stats_.labels_dropped_reserved;
      return false;
    }
    if (k == owned) {
      ++stats_.labels_dropped_type_owned;
      return false;
    }
    return true;
  };
  const std::uint64_t label_drops_before = label_drops();
  lbls_.clear();
  keys_.clear();
  // Views into keys_ must not move: reserve what escaping every key could
  // take (an escaped key is at most one byte longer than the key).
  const std::size_t need = s.tag_bytes.size() + s.tag_count;
  if (keys_.capacity() < need) keys_.reserve(need);
  std::uint32_t order = 1;
  s.for_each_tag([&](const sample::Tag& t) {
    std::string_view k = t.key;
    if (!is_valid_metric_name(k)) {
      const std::size_t at = keys_.size();
      escape_metric_name(k, keys_);
      k = std::string_view(keys_).substr(at);
    }
    if (k.empty() && t.value.empty()) return;
    if (admit(k, t.value)) lbls_.push_back(Lbl{k, t.value, order++});
  });
  const std::uint32_t rule_order = rule.honor_labels ? 0 : UINT32_MAX;
  for (const auto& [k, v] : m.labels) {
    if (admit(k, v)) lbls_.push_back(Lbl{k, v, rule_order});
  }
  std::sort(lbls_.begin(), lbls_.end(),
            [](const Lbl& a, const Lbl& b) { return a.key != b.key ? a.key < b.key : a.order < b.order; });
  // Which labels are kept (compacted to the front of lbls_), then one resize
  // and one copy each.
  std::uint16_t count = 0;
  std::size_t len = 0;
  for (std::size_t i = 0; i < lbls_.size(); ++i) {
    if (i + 1 < lbls_.size() && lbls_[i + 1].key == lbls_[i].key) {
      // Two tags of one name (as sent, or after escaping: a-b and a.b):
      // the later wins. A rule's label replacing a tag is not counted.
      const auto tag = [](const Lbl& l) { return l.order != 0 && l.order != UINT32_MAX; };
      if (tag(lbls_[i]) && tag(lbls_[i + 1]) && !lbls_[i].value.empty()) ++stats_.labels_dropped_duplicate;
      continue;
    }
    if (lbls_[i].value.empty()) continue;
    if (lbls_[i].key.size() > UINT16_MAX || lbls_[i].value.size() > UINT16_MAX || count == UINT16_MAX) {
      ++stats_.dropped_labels_too_long;
      return false;
    }
    len += sizeof(metric::LabelHeader) + lbls_[i].key.size() + lbls_[i].value.size();
    lbls_[count++] = lbls_[i];
  }
  if (len > 60000) {  // leaves room for name and help in one output entry
    ++stats_.dropped_labels_too_long;
    return false;
  }
  const std::size_t start = labels.size();
  labels.resize(start + len);
  std::byte* p = labels.data() + start;
  for (std::size_t i = 0; i < count; ++i) p = put_label(p, lbls_[i].key, lbls_[i].value);
  out.labels_off = static_cast<std::uint32_t>(start);
  out.labels_len = static_cast<std::uint32_t>(len);
  out.label_count = count;
  out.series_hash = hash_bytes(labels.data() + start, len, out.family->name_hash);
  if (run_.skip > 0) {
    --run_.skip;
  } else if (cached && label_drops() == label_drops_before) {
    remember(s, m.rule, out, p - len);
  }
  return out.op != Op::kSetNative || take_native(s, labels, out);
}

bool native_values(const sample::NativeView& n, std::vector<double>& out) {
  const std::size_t pairs = std::size_t{n.positive_count} + n.negative_count;
  const std::size_t count = metric::kNativeHeadValues + 2 * pairs + 2;
  if (count > UINT16_MAX) return false;
  out.clear();
  out.reserve(count);
  out.push_back(n.schema);
  out.push_back(n.zero_threshold);
  out.push_back(n.zero_count);
  out.push_back(n.positive_count);
  out.push_back(n.negative_count);
  for (std::uint32_t i = 0; i < n.positive_count + n.negative_count; ++i) {
    const auto [key, c] = n.bucket(i);
    out.push_back(key);
    out.push_back(c);
  }
  out.push_back(n.count);
  out.push_back(n.sum);
  return true;
}

bool SeriesMapper::take_native(const sample::SampleView& s, std::vector<std::byte>& labels,
                               MappedSample& out) noexcept {
  out.spec = prom_native_spec(matcher_);
  const Family& f = *out.family;
  // The entry Shard::encode will write: header, these values, name, help,
  // unit and labels, in one record of at most max_record_bytes.
  const bool ok = native_values(s.native(), native_);
  const std::size_t entry = sizeof(metric::MetricEntryHeader) + native_.size() * sizeof(double) + f.name().size() +
                            registry_->texts(f).help.size() + registry_->texts(f).unit.size() + out.labels_len + 8;
  // Shard::append_native keeps 4 values' room where these 2 follow.
  if (!ok || native_.size() + 2 > UINT16_MAX || sizeof(metric::MetricBatchHeader) + entry > max_record_bytes_) {
    ++stats_.dropped_native_too_large;
    labels.resize(out.labels_off);
    return false;
  }
  const std::size_t at = labels.size();  // == labels_off + labels_len: Shard::apply reads them there
  labels.resize(at + native_.size() * sizeof(double));
  std::memcpy(labels.data() + at, native_.data(), native_.size() * sizeof(double));
  return true;
}

// The next sample of a run of one series (the same kind, name, tags and
// family as the remembered one): the rule, the family, the labels and the
// series hash are the remembered sample's; the value is its own. What the
// mapping counts per sample is counted here too.
bool SeriesMapper::map_again(const sample::SampleView& s, std::vector<std::byte>& labels, MappedSample& out) noexcept {
  const CompiledRule& rule = run_.rule != nullptr ? *run_.rule : matcher_.unmapped_rule();
  if (run_.rule == nullptr) ++stats_.unmapped;
  FamilyKind kind;
  if (!value_of(s, rule, out, kind)) return false;
  out.spec = run_.rule != nullptr ? run_.rule->index + 1 : 0;
  out.ttl_ns = rule.ttl.count();
  out.family = run_.family;
  const std::size_t start = labels.size();
  labels.resize(start + run_.labels.size());
  if (!run_.labels.empty()) std::memcpy(labels.data() + start, run_.labels.data(), run_.labels.size());
  out.labels_off = static_cast<std::uint32_t>(start);
  out.labels_len = static_cast<std::uint32_t>(run_.labels.size());
  out.label_count = run_.label_count;
  out.series_hash = run_.series_hash;
  return out.op != Op::kSetNative || take_native(s, labels, out);
}

void SeriesMapper::remember(const sample::SampleView& s, const CompiledRule* rule, const MappedSample& out,
                            const std::byte* label_bytes) {
  run_.kind = s.kind;
  run_.name.assign(s.name);
  run_.tags.assign(reinterpret_cast<const char*>(s.tag_bytes.data()), s.tag_bytes.size());
  run_.tag_count = s.tag_count;
  run_.family_type = s.family.type;
  run_.suffix_len = s.family.suffix_len;
  run_.help.assign(s.family.help);
  run_.unit.assign(s.family.unit);
  run_.rule = rule;
  run_.family = out.family;
  run_.labels.assign(label_bytes, label_bytes + out.labels_len);
  run_.label_count = out.label_count;
  run_.series_hash = out.series_hash;
  run_.valid = true;
}

bool SeriesMapper::Run::same(const sample::SampleView& s) const noexcept {
  return s.kind == kind && s.tag_count == tag_count && s.name == name && s.family.type == family_type &&
         s.family.suffix_len == suffix_len &&
         std::string_view(reinterpret_cast<const char*>(s.tag_bytes.data()), s.tag_bytes.size()) == tags &&
         s.family.help == help && s.family.unit == unit;
}

FamilyKind SeriesMapper::family_kind(Kind k, const CompiledRule& rule) noexcept {
  switch (k) {
    case Kind::kCounter:
      return FamilyKind::kCounter;
    case Kind::kGauge:
    case Kind::kGaugeDelta:
      return FamilyKind::kGauge;
    case Kind::kSet:
      return FamilyKind::kSet;
    case Kind::kNativeHistogram:  // a relay's mapper makes it a gauge's (value_of)
      return FamilyKind::kHistogram;
    default:
      return rule.observer_type == ObserverType::kHistogram ? FamilyKind::kHistogram : FamilyKind::kSummary;
  }
}

// Exactly when resolve_family(raw) finds f, without a conflict: f's name is
// raw escaped as resolve_family() escapes it (f's name is the only one that
// escaping gives, and names are unique in the registry), and f has the kind
// and Prometheus family raw_key asks for and is not blocked. A Prometheus
// name that escaping changed loses its suffix there (suffix 0): then f must
// have none either. f's fields never change, so the answer holds for as long
// as f lives (the registry's life).
bool SeriesMapper::names_family(const Family& f, std::string_view raw, std::uint32_t raw_key) noexcept {
  if (family_key(f) != raw_key || f.blocked) return false;
  // A family's name is a valid one (the registry takes no other): equal to
  // it, raw needed no escaping either.
  if (raw == f.name()) return true;
  return f.prom_suffix_len == 0 && escapes_to_valid_name(raw, f.name(), f.prom_type != 0);
}

// The hints guess that the sample keeps its name (no rule renames it); a
// wrong guess only fetches a line that is not used.
std::uint64_t SeriesMapper::prefetch_index(const sample::SampleView& s) const noexcept {
  PromFamily prom;
  if (s.family.type != sample::FamilyType::kNone) {
    prom = PromFamily{static_cast<std::uint8_t>(s.family.type), s.family.suffix_len, s.family.unit};
  }
  const std::uint64_t rh = raw_hash(s.name, raw_key_of(family_kind(s.kind, matcher_.unmapped_rule()), prom));
  raw_index_.prefetch(rh);
  return rh;
}

void SeriesMapper::prefetch_entry(std::uint64_t rh) const noexcept {
  const std::uint32_t v = raw_index_.home_value(rh);
  if (v == FlatIndex::kNone) return;
  if ((v & kFamilyRef) != 0) {
    __builtin_prefetch(&registry_->at(v & ~kFamilyRef));
  } else {
    __builtin_prefetch(&raw_names_[v]);
  }
}

void SeriesMapper::prefetch_name(std::uint64_t rh) const noexcept {
  const std::uint32_t v = raw_index_.home_value(rh);
  if (v == FlatIndex::kNone) return;
  if ((v & kFamilyRef) != 0) {
    __builtin_prefetch(registry_->at(v & ~kFamilyRef).name_at);
    return;
  }
  const RawName& r = raw_names_[v];
  __builtin_prefetch(r.raw.data());
  __builtin_prefetch(r.family);
}

// A name not seen before: escaped (a Prometheus sample keeps its name as
// Prometheus allows it, ':' included, and its family's type, HELP and UNIT,
// unless a rule renamed it: then the family it came in no longer describes it,
// a plain gauge), then its family found or created (type conflicts are decided
// once per name and cached).
SeriesMapper::Resolved SeriesMapper::resolve_family(std::string_view raw, FamilyKind kind, PromFamily prom,
                                                    std::string_view prom_help, const CompiledRule& rule) {
  name_.clear();
  if (prom.type != 0 && is_valid_prom_metric_name(raw)) {
    name_.assign(raw);
  } else if (prom.type != 0) {
    escape_prom_metric_name(raw, name_);
    prom.suffix_len = 0;  // the family's name is no longer a prefix of it
  } else if (is_valid_metric_name(raw)) {
    name_.assign(raw);
  } else {
    escape_metric_name(raw, name_);
  }
  if (name_.empty()) {
    ++stats_.dropped_empty_name;
    return Resolved{nullptr, false};
  }
  if (name_.size() > FamilyRegistry::kMaxNameBytes) {  // a rule's template made it longer than a family's name may be
    ++stats_.dropped_name_too_long;
    return Resolved{nullptr, false};
  }
  std::string_view help = rule.help.empty() ? std::string_view(default_help_) : std::string_view(rule.help);
  if (prom.type != 0 && rule.help.empty()) help = prom_help;  // a Prometheus family's own HELP, even empty
  // The registry is asked once per distinct name as it came (the caller
  // caches the answer): two names that escape alike ask twice, and find the
  // family the first one made.
  const FamilyRegistry::Lookup lk = registry_->get_or_create(name_, kind, help, prom);
  if (lk.family == nullptr) {
    ++stats_.dropped_family_limit;
    return Resolved{nullptr, false};
  }
  return Resolved{lk.family, lk.conflict};
}

EngineStats SeriesMapper::stats() const noexcept {
  EngineStats s = stats_;
  const MatcherStats ms = matcher_.stats();
  s.mapping_cache_hits = ms.cache_hits;
  s.mapping_lookups = ms.lookups;
  return s;
}

}  // namespace ringpipe::processors::detail
