#include "series_state.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include "counts.hpp"
#include "ringpipe/common/large_buffer.hpp"
#include "ringpipe/common/test_hooks.hpp"
#include "ringpipe/common/utf8.hpp"
#include "text_writer.hpp"

namespace ringpipe::exporters {
namespace {

// How many series (or page segments) ahead a walk fetches what it will need.
constexpr std::size_t kFetchAhead = 8;

// A scrape walks each shard's series in key order, while their families lie
// in the order they were made: each series' family head would be a cache
// miss unless fetched a few series ahead.
template <class Table, class Head>
void fetch_head_ahead(const Table& map, std::size_t at, const std::vector<Head>& heads) noexcept {
  if (at + kFetchAhead >= map.size()) return;
  const std::uint32_t family = map.entry(at + kFetchAhead).series.family;
  if (family < heads.size()) __builtin_prefetch(&heads[family]);
}

using metric::EntryKind;
using metric::MetricType;

constexpr std::uint32_t kNoFamily = UINT32_MAX;

inline void prefetch(const void* line) noexcept {
  if (line != nullptr) __builtin_prefetch(line);
}
constexpr std::size_t kRetiredInstances = 16;

bool has_suffix(std::string_view s, std::string_view suffix) noexcept {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool values_fit(const metric::MetricEntryView& e) noexcept {
  const std::uint16_t n = e.value_count;
  // A relayed native histogram sample: [count, sum] after its native part.
  if ((e.flags & metric::kEntryPromSample) != 0) return n == ((e.flags & metric::kEntryNative) != 0 ? 2 : 1);
  switch (e.type) {
    case MetricType::kCounter:
    case MetricType::kGauge:
      return n >= 1;
    case MetricType::kSummary:
    case MetricType::kHistogram:
      return n >= 2 && n % 2 == 0;
    default:
      return false;
  }
}

prometheus::MetricType to_prometheus(MetricType t) noexcept {
  switch (t) {
    case MetricType::kCounter:
      return prometheus::MetricType::Counter;
    case MetricType::kGauge:
      return prometheus::MetricType::Gauge;
    case MetricType::kSummary:
      return prometheus::MetricType::Summary;
    case MetricType::kHistogram:
      return prometheus::MetricType::Histogram;
    case MetricType::kInfo:  // the text format has none of these: served as gauges, as client_python does
    case MetricType::kStateset:
    case MetricType::kGaugeHistogram:
      return prometheus::MetricType::Gauge;
    case MetricType::kUntyped:
      break;
  }
  return prometheus::MetricType::Untyped;
}

// A label value as Prometheus parses `le` and `quantile` ("+Inf", "0.5").
double label_number(std::string_view v) noexcept {
  if (v == "+Inf" || v == "Inf") return std::numeric_limits<double>::infinity();
  if (v == "-Inf") return -std::numeric_limits<double>::infinity();
  double d = std::numeric_limits<double>::quiet_NaN();
  if (!v.empty() && v.front() == '+') v.remove_prefix(1);
  std::from_chars(v.data(), v.data() + v.size(), d);
  return d;
}

// A native histogram for the protobuf page from a series' native values
// (schema, zero threshold, zero count, positive and negative bucket counts,
// then index/count pairs: metric/FORMAT.md) and its observation count.
void fill_native(protobuf::NativeHistogram& h, std::span<const double> n, double count) {
  h.schema = static_cast<std::int32_t>(n[0]);
  h.zero_threshold = n[1];
  h.zero_count = n[2];
  h.count = count;
  const std::size_t pos = static_cast<std::size_t>(n[3]);
  const std::size_t neg = static_cast<std::size_t>(n[4]);
  for (std::size_t i = 0; i < pos + neg; ++i) {
    const double* kv = n.data() + metric::kNativeHeadValues + 2 * i;
    (i < pos ? h.positive : h.negative).emplace_back(static_cast<std::int32_t>(kv[0]), kv[1]);
  }
}

}  // namespace

bool SeriesState::group_of(const Series& se, bool histogram, std::string& key, std::string_view& own, double& bound) {
  const bool owns = histogram ? se.role == Role::kBucket : se.role == Role::kValue;
  own = owns ? (histogram ? "le" : "quantile") : "";
  key.clear();
  bound = std::numeric_limits<double>::quiet_NaN();
  metric::for_each_label(se.labels(), se.label_count(), [&](const metric::Label& l) {
    if (owns && l.name == own) {
      bound = label_number(l.value);
      return;
    }
    key.append(l.name).push_back('\0');
    key.append(l.value).push_back('\0');
  });
  return !(owns && std::isnan(bound));  // no usable le / quantile: nothing it could be served as
}

SeriesState::SeriesState() = default;

std::uint32_t SeriesState::find_family(std::string_view name) const noexcept {
  return family_ids_.find(std::hash<std::string_view>{}(name),
                          [&](std::uint32_t id) { return families_[id].name() == name; });
}

std::uint32_t SeriesState::intern_help(std::string_view help) {
  if (help.empty()) return 0;
  auto it = helps_.find(std::string(help));
  if (it == helps_.end()) {
    std::lock_guard lock(families_mu_);
    // Room before the map holds an id the table lacks (doubling: most pages
    // share a few HELPs, a scraped one has one a family).
    if (help_texts_.size() == help_texts_.capacity()) help_texts_.reserve(help_texts_.size() * 2);
    it = helps_.emplace(std::string(help), static_cast<std::uint32_t>(help_texts_.size())).first;
    help_texts_.push_back(&it->first);
  }
  return it->second;
}

void SeriesState::apply(std::span<const std::byte> record, std::int64_t now_ns) noexcept {
  counters_.records.fetch_add(1, std::memory_order_relaxed);
  apply_now_ns_ = now_ns;
  metric::MetricBatchReader reader(record);
  if (reader.error() != metric::MetricDecodeError::kNone) {
    counters_.decode_errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const metric::MetricBatchHeader& h = reader.header();
  if (h.shard_count == 0 || h.shard_count > kMaxProcessorShards || h.shard >= h.shard_count) {
    counters_.decode_errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (h.instance_id != instance_.load(std::memory_order_relaxed)) {
    if (std::find(retired_instances_.begin(), retired_instances_.end(), h.instance_id) != retired_instances_.end()) {
      counters_.stale_records.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    start_instance(h.instance_id, h.shard_count);
  } else if (h.shard_count != shard_count_) {
    // Same instance, other geometry: nothing to trust about earlier snapshots.
    start_instance(h.instance_id, h.shard_count);
  }
  // Entries are decoded kAhead ahead of the one applied, so the lines its
  // lookups miss on (slot, entry, family, name: four dependent loads, each a
  // miss at 1M series) are fetched in steps while earlier entries apply.
  constexpr std::size_t kAhead = 16;
  constexpr std::size_t kEntryAt = 10;  // entries ahead of the applied one when its entry is prefetched
  constexpr std::size_t kFamilyAt = 5;
  constexpr std::size_t kNameAt = 2;
  std::array<metric::MetricEntryView, kAhead> ahead;
  std::size_t head = 0;  // next to apply
  std::size_t tail = 0;  // next to decode into
  bool more = true;
  auto keyed = [](const metric::MetricEntryView& v) {
    return v.kind == EntryKind::kSeries || v.kind == EntryKind::kExpire;
  };
  // The key of the entry `distance` ahead of the next to apply, or 0 (none, or a marker).
  auto key_ahead = [&](std::size_t distance) -> std::uint64_t {
    if (!apply_prefetch_ || head + distance >= tail) return 0;
    const metric::MetricEntryView& v = ahead[(head + distance) % kAhead];
    return keyed(v) ? v.key : 0;
  };
  std::uint64_t entries = 0;
  for (;;) {
    while (more && tail - head < kAhead) {
      std::optional<metric::MetricEntryView> next = reader.next();
      if (!next) {
        more = false;
        break;
      }
      if (apply_prefetch_ && keyed(*next)) prefetch(shard_of(next->key).map.slot_line(next->key));
      ahead[tail++ % kAhead] = *next;
    }
    if (head == tail) break;
    if (const std::uint64_t key = key_ahead(kEntryAt); key != 0) {
      if (const SeriesTable::Entry* entry = shard_of(key).map.entry_line(key); entry != nullptr) {
        prefetch(entry);
        prefetch(reinterpret_cast<const char*>(entry) + sizeof *entry - 1);  // an entry spans two lines
      }
    }
    if (const std::uint64_t key = key_ahead(kFamilyAt); key != 0) prefetch(family_line(key));
    if (const std::uint64_t key = key_ahead(kNameAt); key != 0) prefetch(family_name_line(key));
    const metric::MetricEntryView* e = &ahead[head++ % kAhead];
    ++entries;
    switch (e->kind) {
      case EntryKind::kSeries:
        if (relabel_.empty()) {
          apply_series(*e, h.shard);
        } else if (metric::MetricEntryView r = *e; relabel_.apply(r)) {
          apply_series(r, h.shard);
        } else {
          // Counted once per series: the processor sends it again at every change and snapshot.
          if (relabel_dropped_keys_.insert(e->key).second) {
            counters_.relabel_dropped.fetch_add(1, std::memory_order_relaxed);
          }
          expire(e->key);
        }
        break;
      case EntryKind::kExpire:
        if (!relabel_.empty()) relabel_dropped_keys_.erase(e->key);
        expire(e->key);
        break;
      case EntryKind::kSnapshotBegin: {
        ProcShard& p = proc_[h.shard];
        p.generation = next_generation_++;
        if (next_generation_ == 0) next_generation_ = 1;  // 0: a series no snapshot mentioned yet
        p.snapshot_id = e->key;
        p.in_snapshot = true;
        break;
      }
      case EntryKind::kSnapshotEnd: {
        ProcShard& p = proc_[h.shard];
        if (p.in_snapshot && p.snapshot_id == e->key) finish_snapshot(h.shard);
        break;
      }
    }
  }
  counters_.entries.fetch_add(entries, std::memory_order_relaxed);
  if (reader.error() != metric::MetricDecodeError::kNone) {
    counters_.decode_errors.fetch_add(1, std::memory_order_relaxed);
  }
}

void SeriesState::start_instance(std::uint64_t instance, std::uint16_t shard_count) noexcept {
  const std::uint64_t old = instance_.load(std::memory_order_relaxed);
  if (old != instance) {
    if (old != 0) {
      retired_instances_.push_back(old);
      if (retired_instances_.size() > kRetiredInstances) retired_instances_.erase(retired_instances_.begin());
      counters_.instance_changes.fetch_add(1, std::memory_order_relaxed);
    }
    instance_.store(instance, std::memory_order_relaxed);
    if (++instance_epoch_ == 0) instance_epoch_ = 1;
  }
  // The old state stays visible until every new shard has sent a snapshot.
  replacing_old_instance_ = true;
  shard_count_ = shard_count;
  proc_.assign(shard_count, ProcShard{});
  complete_.store(false, std::memory_order_release);
}

bool SeriesState::name_conflicts(std::uint32_t id) const noexcept {
  static constexpr std::string_view kSuffixes[] = {"_sum", "_count", "_bucket"};
  const Family& f = families_[id];
  auto live = [&](std::string_view name, bool want_compound) {
    const std::uint32_t other = find_family(name);
    if (other == kNoFamily || other == id || family_live_[other] == 0) return false;
    const Family& o = families_[other];
    if (o.conflict) return false;
    const bool compound = o.type == MetricType::kSummary || o.type == MetricType::kHistogram;
    return !want_compound || compound;
  };
  for (std::string_view s : kSuffixes) {
    if (has_suffix(f.name(), s) && live(f.name().substr(0, f.name().size() - s.size()), true)) {
      return true;
    }
  }
  if (f.type == MetricType::kSummary || f.type == MetricType::kHistogram) {
    for (std::string_view s : kSuffixes) {
      if (live(std::string(f.name()).append(s), false)) return true;
    }
  }
  return false;
}

std::uint32_t SeriesState::known_family(const metric::MetricEntryView& e, std::uint32_t held) noexcept {
  // A series sent again (every change, every snapshot) mostly keeps its
  // family (the caller compared the names), which spares the lookup by name
  // in a table as large as the number of families.
  if (held == kNoFamily) return family_for(e);
  const Family& f = families_[held];  // families_ changes on this thread only
  const bool prom = (e.flags & metric::kEntryPromSample) != 0;
  if (f.type != e.type || f.prom != prom || f.conflict) return kNoFamily;  // as family_for: the family is live
  return held;
}

std::uint32_t SeriesState::family_for(const metric::MetricEntryView& e) noexcept {
  const bool prom = (e.flags & metric::kEntryPromSample) != 0;
  const std::uint64_t hash = std::hash<std::string_view>{}(e.family);
  const std::uint32_t found =
      family_ids_.find(hash, [&](std::uint32_t id) { return families_[id].name() == e.family; });
  if (found == kNoFamily) {
    const auto id = static_cast<std::uint32_t>(families_.size());
    const std::uint32_t help = intern_help(e.help);
    const std::string_view name = names_.add(e.family);
    {
      std::lock_guard lock(families_mu_);
      families_.push_back(Family{name.data(), help, static_cast<std::uint16_t>(name.size()), e.type, false, prom});
    }
    family_ids_.insert(hash, id);
    family_live_.push_back(0);
    if (name_conflicts(id)) {
      std::lock_guard lock(families_mu_);
      families_[id].conflict = true;
    }
    counters_.families.store(families_.size(), std::memory_order_relaxed);
    return families_[id].conflict ? kNoFamily : id;
  }
  const std::uint32_t id = found;
  Family& f = families_[id];
  if (family_live_[id] == 0) {
    // Nothing of it is served: it may take this entry's type, and the names
    // around it may have changed since it was last checked.
    const std::uint32_t help = f.help_id == 0 ? intern_help(e.help) : f.help_id;
    std::lock_guard lock(families_mu_);
    f.type = e.type;
    f.prom = prom;
    f.help_id = help;
    f.conflict = false;
    f.conflict = name_conflicts(id);
  } else if (f.type != e.type || f.prom != prom) {
    return kNoFamily;
  }
  return f.conflict ? kNoFamily : id;
}

namespace {

// Whether Prometheus reads these labels: names [a-zA-Z_][a-zA-Z0-9_]*, none
// twice, values UTF-8 (the metric ring is a shared mapping: its writer may be
// hostile, and one bad series would make the whole page unreadable).
bool servable_labels(const metric::MetricEntryView& e) noexcept {
  bool ok = true;
  std::array<std::string_view, 32> few{};
  std::size_t n = 0;
  bool sorted = true;
  std::string_view prev;
  e.for_each_label([&](const metric::Label& l) {
    ok = ok && relabel::valid_label_name(l.name) && common::valid_utf8(l.value);
    if (n > 0 && !(prev < l.name)) sorted = false;
    if (n < few.size()) few[n] = l.name;
    prev = l.name;
    ++n;
  });
  if (!ok) return false;
  // A processor sends its labels sorted; unsorted ones are checked for a
  // repeated name when they are few, else refused.
  if (sorted || n > few.size()) return sorted;
  std::sort(few.begin(), few.begin() + static_cast<std::ptrdiff_t>(n));
  return std::adjacent_find(few.begin(), few.begin() + static_cast<std::ptrdiff_t>(n)) ==
         few.begin() + static_cast<std::ptrdiff_t>(n);
}

}  // namespace

void SeriesState::apply_series(const metric::MetricEntryView& e, std::uint16_t shard) noexcept {
  RINGPIPE_TEST_CRASH_POINT("exporter", e.name);
  if (!values_fit(e)) {
    counters_.decode_errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // The series is looked up once: only this thread changes the tables, so
  // its position holds between the two locks (scrapes only read).
  Shard& s = shard_of(e.key);
  std::size_t at = SeriesTable::kNpos;
  std::uint32_t held = kNoFamily;
  {
    std::lock_guard lock(s.mu);
    at = s.map.find(e.key);
    if (at != SeriesTable::kNpos) held = s.map.at(at).family;
  }
  // A new series, and one whose name or labels change, is checked as
  // Prometheus will read it (a known one was when it came).
  const bool new_name = held >= families_.size() || families_[held].name() != e.family;
  const bool new_labels = at == SeriesTable::kNpos || !std::ranges::equal(s.map.at(at).labels(), e.label_bytes);
  if ((new_name && (e.family.empty() || !relabel::valid_metric_name(e.name))) || (new_labels && !servable_labels(e))) {
    counters_.decode_errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::uint32_t fid = known_family(e, new_name ? kNoFamily : held);
  if (fid == kNoFamily) {
    counters_.conflicts.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if ((at == SeriesTable::kNpos || held != fid) && family_live_[fid] != 0 && !families_[fid].many) {
    std::lock_guard lock(families_mu_);  // before the second series is visible to a render
    families_[fid].many = true;
  }
  const ProcShard& p = proc_[shard];
  std::lock_guard lock(s.mu);
  const bool inserted = at == SeriesTable::kNpos;
  Series& se = inserted ? s.map.emplace_new(e.key) : s.map.at(at);
  if (inserted) {
    ++family_live_[fid];
    counters_.series.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard pl(proc_series_mu_);
    if (proc_series_.size() <= shard) proc_series_.resize(std::size_t{shard} + 1);
    ++proc_series_[shard];
  } else {
    if (se.family != fid) {
      --family_live_[se.family];
      ++family_live_[fid];
    }
    if (se.shard != shard) {
      std::lock_guard pl(proc_series_mu_);
      if (proc_series_.size() <= shard) proc_series_.resize(std::size_t{shard} + 1);
      --proc_series_[se.shard];
      ++proc_series_[shard];
    }
  }
  se.family = fid;
  se.role = Role::kValue;
  if ((e.flags & metric::kEntryPromSample) != 0) {
    const std::string_view suffix = e.name.substr(e.family.size());
    se.role = suffix == "_bucket"  ? Role::kBucket
              : suffix == "_sum"   ? Role::kSum
              : suffix == "_count" ? Role::kCount
                                   : Role::kValue;
  }
  se.shard = shard;
  se.epoch = instance_epoch_;
  if (p.in_snapshot) se.generation = p.generation;
  if ((e.flags & metric::kEntryNative) != 0) {
    // The native part lies right before the classic values (the reader checked it).
    const std::size_t nv = metric::kNativeHeadValues + e.native.pairs.size() / sizeof(double);
    const std::span<const std::byte> all(e.value_bytes.data() - nv * sizeof(double),
                                         e.value_bytes.size() + nv * sizeof(double));
    se.assign(all, static_cast<std::uint16_t>(e.value_count + nv), e.label_bytes, e.label_count, true);
  } else {
    se.assign(e.value_bytes, e.value_count, e.label_bytes, e.label_count);
  }
  if (relay_ttl_ns_ > 0 && (e.flags & metric::kEntryTimestamp) != 0) {
    try {
      relayed_at_[e.key] = apply_now_ns_;
    } catch (...) {
      ++relay_untracked_;  // out of memory: the series stays served, as without a ttl
    }
  }
}

std::size_t SeriesState::expire_relayed(std::int64_t now_ns) noexcept {
  if (relay_ttl_ns_ <= 0) return 0;
  std::size_t n = 0;
  for (auto it = relayed_at_.begin(); it != relayed_at_.end();) {
    if (now_ns - it->second < relay_ttl_ns_) {
      ++it;
      continue;
    }
    Shard& s = shard_of(it->first);
    bool live = false;
    {
      std::lock_guard lock(s.mu);
      live = s.map.find(it->first) != SeriesTable::kNpos;
    }
    if (live) {
      expire(it->first);
      ++n;
    }
    it = relayed_at_.erase(it);
  }
  counters_.relay_expired.fetch_add(n, std::memory_order_relaxed);
  return n;
}

void SeriesState::Series::take(Series& o) noexcept {
  epoch = o.epoch;
  generation = o.generation;
  family = o.family;
  shard = o.shard;
  role = o.role;
  native_ = o.native_;
  label_bytes_ = o.label_bytes_;
  label_count_ = o.label_count_;
  value_count_ = o.value_count_;
  std::memcpy(static_cast<void*>(inline_), static_cast<const void*>(o.inline_), sizeof inline_);  // or heap_
  o.label_bytes_ = 0;
  o.label_count_ = 0;
  o.value_count_ = 0;  // o holds nothing now, on the heap or not
}

std::size_t SeriesState::SeriesTable::home(std::uint32_t tag) const noexcept {
  // Keys are hashes already; their low bits pick the shard (key % kShards),
  // the high 32 bits are the tag, mixed here so that tags close together spread.
  return span_.home(static_cast<std::uint32_t>((std::uint64_t{tag} * 0x9E3779B97F4A7C15ull) >> 32));
}

std::size_t SeriesState::SeriesTable::find(std::uint64_t key) const noexcept {
  if (slots_.empty()) return kNpos;
  const std::uint32_t tag = tag_of(key);
  for (std::size_t j = home(tag);; j = span_.next(j)) {
    const Slot s = slots_[j];
    if (s.pos == 0) return kNpos;
    if (s.tag == tag && entry(s.pos - 1).key == key) return s.pos - 1;
  }
}

const void* SeriesState::SeriesTable::slot_line(std::uint64_t key) const noexcept {
  return slots_.empty() ? nullptr : &slots_[home(tag_of(key))];
}

const SeriesState::SeriesTable::Entry* SeriesState::SeriesTable::entry_line(std::uint64_t key) const noexcept {
  if (slots_.empty()) return nullptr;
  const Slot s = slots_[home(tag_of(key))];
  return s.pos == 0 || s.pos > size_ || s.tag != tag_of(key) ? nullptr : &entry(s.pos - 1);
}

std::uint32_t SeriesState::SeriesTable::family_hint(std::uint64_t key) const noexcept {
  const Entry* e = entry_line(key);
  return e != nullptr && e->key == key ? e->series.family : kNoFamily;
}

const void* SeriesState::family_line(std::uint64_t key) const noexcept {
  // Only this thread changes the tables and families_: no lock to read them.
  const std::uint32_t id = shards_[key % kShards].map.family_hint(key);
  return id < families_.size() ? &families_[id] : nullptr;
}

const void* SeriesState::family_name_line(std::uint64_t key) const noexcept {
  const std::uint32_t id = shards_[key % kShards].map.family_hint(key);
  return id < families_.size() ? families_[id].name_at : nullptr;
}

std::size_t SeriesState::SeriesTable::slot_of(std::uint64_t key) const noexcept {
  const std::uint32_t tag = tag_of(key);
  std::size_t j = home(tag);
  while (slots_[j].tag != tag || entry(slots_[j].pos - 1).key != key) j = span_.next(j);
  return j;
}

void SeriesState::SeriesTable::grow() {
  const std::size_t n = slots_.empty() ? 64 : common::ProbeSpan::grown(slots_.size());
  common::LargeArray<Slot> old(n);
  old.swap(slots_);  // slots_ is the new, empty array
  span_ = common::ProbeSpan(n);
  for (const Slot& s : old) {
    if (s.pos == 0) continue;
    std::size_t j = home(s.tag);
    while (slots_[j].pos != 0) j = span_.next(j);
    slots_[j] = s;
  }
}

SeriesState::Series& SeriesState::SeriesTable::emplace_new(std::uint64_t key) {
  if ((size_ + 1) * 4 > slots_.size() * 3) grow();
  if (size_ == chunks_.size() * kChunk) chunks_.push_back(common::make_chunk_array<Entry>(kChunk));
  const std::uint32_t tag = tag_of(key);
  std::size_t j = home(tag);
  while (slots_[j].pos != 0) j = span_.next(j);
  Entry& e = entry_mut(size_);
  e.key = key;
  ++size_;
  slots_[j] = Slot{tag, static_cast<std::uint32_t>(size_)};
  return e.series;
}

void SeriesState::SeriesTable::erase_at(std::size_t at) noexcept {
  // Backward-shift deletion: later members of the probe run move up into
  // the hole when their home slot allows, so no tombstones are needed.
  std::size_t hole = slot_of(entry(at).key);
  for (std::size_t j = span_.next(hole); slots_[j].pos != 0; j = span_.next(j)) {
    if (span_.distance(home(slots_[j].tag), j) >= span_.distance(hole, j)) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole] = Slot{};
  const std::size_t last = size_ - 1;
  Entry& gone = entry_mut(at);
  if (at != last) {
    Entry& moved = entry_mut(last);
    slots_[slot_of(moved.key)].pos = static_cast<std::uint32_t>(at + 1);
    gone.key = moved.key;
    gone.series = std::move(moved.series);
    // moved is empty now: the move took its block, if any
  } else {
    gone.series = Series();
  }
  --size_;
  // A chunk left empty is freed (one more kept spare, so a series added and
  // erased at a chunk's edge does not allocate each time).
  if (chunks_.size() * kChunk >= size_ + 2 * kChunk) chunks_.pop_back();
}

void SeriesState::Series::assign(std::span<const std::byte> values, std::uint16_t n, std::span<const std::byte> labels,
                                 std::uint16_t count, bool native) {
  const std::span<const std::byte> held = this->labels();
  const bool same = value_count_ == n && label_count_ == count && held.size() == labels.size() &&
                    std::equal(labels.begin(), labels.end(), held.begin());
  if (!same) {
    const std::size_t words = std::size_t{n} + label_words(labels.size());
    double* block = words > kInlineWords ? new double[words] : nullptr;
    release();  // by the old sizes
    value_count_ = n;
    label_bytes_ = static_cast<std::uint32_t>(labels.size());
    label_count_ = count;
    if (block != nullptr) heap_ = block;
    std::memcpy(words_mut() + n, labels.data(), labels.size());
  }
  std::memcpy(words_mut(), values.data(), values.size());
  native_ = native;
}

void SeriesState::expire(std::uint64_t key) noexcept {
  Shard& s = shard_of(key);
  std::lock_guard lock(s.mu);
  const std::size_t at = s.map.find(key);
  if (at == SeriesTable::kNpos) return;
  const Series& se = s.map.at(at);
  --family_live_[se.family];
  {
    std::lock_guard pl(proc_series_mu_);
    --proc_series_[se.shard];
  }
  s.map.erase_at(at);
  counters_.series.fetch_sub(1, std::memory_order_relaxed);
}

void SeriesState::finish_snapshot(std::uint16_t shard) noexcept {
  ProcShard& p = proc_[shard];
  const std::uint32_t epoch = instance_epoch_;
  p.in_snapshot = false;
  p.snapshotted = true;
  const bool all = std::all_of(proc_.begin(), proc_.end(), [](const ProcShard& x) { return x.snapshotted; });
  const bool drop_old = all && replacing_old_instance_;
  std::uint64_t erased = 0;
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (std::size_t i = 0; i < s.map.size();) {
      const Series& se = s.map.at(i);
      const bool unmentioned = se.shard == shard && se.epoch == epoch && se.generation != p.generation;
      if (unmentioned || (drop_old && se.epoch != epoch)) {
        --family_live_[se.family];
        {
          std::lock_guard pl(proc_series_mu_);
          --proc_series_[se.shard];
        }
        s.map.erase_at(i);  // the last series moves to i: looked at next
        ++erased;
      } else {
        ++i;
      }
    }
  }
  counters_.series.fetch_sub(erased, std::memory_order_relaxed);
  counters_.snapshots.fetch_add(1, std::memory_order_relaxed);
  if (drop_old) replacing_old_instance_ = false;
  if (all) complete_.store(true, std::memory_order_release);
}

std::vector<std::uint64_t> SeriesState::series_per_processor_shard() const {
  std::lock_guard pl(proc_series_mu_);
  return proc_series_;
}

void SeriesState::collect(std::vector<prometheus::MetricFamily>& out, protobuf::NativeIndex* natives) const {
  struct Head {
    prometheus::MetricType type;
    bool skip;
    bool prom;
  };
  std::vector<Head> heads;
  const std::size_t base = out.size();
  {
    std::lock_guard lock(families_mu_);
    heads.reserve(families_.size());
    out.resize(base + families_.size());
    for (std::size_t i = 0; i < families_.size(); ++i) {
      const Family& f = families_[i];
      heads.push_back(Head{to_prometheus(f.type), f.conflict, f.prom});
      out[base + i].name = std::string(f.name());
      out[base + i].help = std::string(help_of(f));
      out[base + i].type = heads.back().type;
    }
  }
  // Sizes first, so a family's vector of (large) ClientMetrics never regrows.
  std::vector<std::size_t> sizes(heads.size(), 0);
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (const auto& kv : s.map.entries()) {
      if (kv.series.family < sizes.size()) ++sizes[kv.series.family];
    }
  }
  for (std::size_t i = 0; i < heads.size(); ++i) out[base + i].metric.reserve(sizes[i] + sizes[i] / 16);
  // A Prometheus histogram's or summary's samples (_bucket, _sum, _count,
  // quantiles) come as separate series: one ClientMetric per family and
  // label set without `le` / `quantile`.
  std::map<std::pair<std::uint32_t, std::string>, std::size_t> groups;
  std::string group_key;
  const auto add_prom = [&](const Series& se, prometheus::MetricType type) {
    std::vector<prometheus::ClientMetric>& metrics = out[base + se.family].metric;
    const double v = se.values()[0];
    const auto labels = se.labels();
    const bool native = !se.native_values().empty();
    // A native gaugehistogram sample: its family is served as a gauge
    // family (to_prometheus), which has no place for it.
    if (native && type != prometheus::MetricType::Histogram) return;
    if (type != prometheus::MetricType::Histogram && type != prometheus::MetricType::Summary) {
      prometheus::ClientMetric& m = metrics.emplace_back();
      metric::for_each_label(labels, se.label_count(), [&](const metric::Label& l) {
        m.label.push_back({std::string(l.name), std::string(l.value)});
      });
      if (type == prometheus::MetricType::Counter) {
        m.counter.value = v;
      } else if (type == prometheus::MetricType::Gauge) {
        m.gauge.value = v;
      } else {
        m.untyped.value = v;
      }
      return;
    }
    std::string_view own;
    double bound = 0;
    if (!group_of(se, type == prometheus::MetricType::Histogram, group_key, own, bound)) return;
    const bool owns = !own.empty();
    auto [it, fresh] = groups.try_emplace({se.family, group_key}, metrics.size());
    if (fresh) {
      prometheus::ClientMetric& m = metrics.emplace_back();
      metric::for_each_label(labels, se.label_count(), [&](const metric::Label& l) {
        if (!(owns && l.name == own)) m.label.push_back({std::string(l.name), std::string(l.value)});
      });
    }
    prometheus::ClientMetric& m = metrics[it->second];
    if (native) {
      // A relayed native histogram sample: its count and sum, and its
      // buckets as a native histogram of the same metric (beside classic
      // buckets of the same labels, if any came too).
      const std::span<const double> n = se.native_values();
      m.histogram.sample_count = to_count(se.values()[0]);
      m.histogram.sample_sum = se.values()[1];
      if (natives == nullptr) return;
      protobuf::NativeHistogram& h = (*natives)[out[base + se.family].name].emplace_back();
      h.metric = it->second;
      fill_native(h, n, se.values()[0]);
      return;
    }
    if (type == prometheus::MetricType::Histogram) {
      if (se.role == Role::kBucket) m.histogram.bucket.push_back({to_count(v), bound});
      if (se.role == Role::kSum) m.histogram.sample_sum = v;
      if (se.role == Role::kCount) m.histogram.sample_count = to_count(v);
    } else {
      if (se.role == Role::kValue) m.summary.quantile.push_back({bound, v});
      if (se.role == Role::kSum) m.summary.sample_sum = v;
      if (se.role == Role::kCount) m.summary.sample_count = to_count(v);
    }
  };
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (std::size_t at = 0; at < s.map.size(); ++at) {
      fetch_head_ahead(s.map, at, heads);
      const Series& se = s.map.entry(at).series;
      if (se.family >= heads.size() || heads[se.family].skip) continue;
      const prometheus::MetricType type = heads[se.family].type;
      if (heads[se.family].prom) {
        add_prom(se, type);
        continue;
      }
      prometheus::ClientMetric& m = out[base + se.family].metric.emplace_back();
      m.label.reserve(se.label_count());
      metric::for_each_label(se.labels(), se.label_count(), [&](const metric::Label& l) {
        m.label.push_back({std::string(l.name), std::string(l.value)});
      });
      const std::span<const double> v = se.values();
      switch (type) {
        case prometheus::MetricType::Counter:
          m.counter.value = v[0];
          break;
        case prometheus::MetricType::Gauge:
          m.gauge.value = v[0];
          break;
        case prometheus::MetricType::Summary:
          m.summary.sample_count = to_count(v[0]);
          m.summary.sample_sum = v[1];
          m.summary.quantile.reserve((v.size() - 2) / 2);
          for (std::size_t i = 2; i + 1 < v.size(); i += 2) m.summary.quantile.push_back({v[i], v[i + 1]});
          break;
        case prometheus::MetricType::Histogram:
          m.histogram.sample_count = to_count(v[0]);
          m.histogram.sample_sum = v[1];
          m.histogram.bucket.reserve((v.size() - 2) / 2);
          for (std::size_t i = 2; i + 1 < v.size(); i += 2) {
            m.histogram.bucket.push_back({to_count(v[i + 1]), v[i]});
          }
          if (natives != nullptr && !se.native_values().empty()) {
            const std::span<const double> n = se.native_values();
            protobuf::NativeHistogram& h = (*natives)[out[base + se.family].name].emplace_back();
            h.metric = out[base + se.family].metric.size() - 1;
            fill_native(h, n, v[0]);
          }
          break;
        default:
          m.untyped.value = v[0];
          break;
      }
    }
  }
  for (const auto& [group, at] : groups) {
    prometheus::ClientMetric& m = out[base + group.first].metric[at];
    std::sort(m.histogram.bucket.begin(), m.histogram.bucket.end(),
              [](const auto& a, const auto& b) { return a.upper_bound < b.upper_bound; });
    std::sort(m.summary.quantile.begin(), m.summary.quantile.end(),
              [](const auto& a, const auto& b) { return a.quantile < b.quantile; });
  }
  if (natives != nullptr) {
    // A group's metric index is where it was first met, not where its
    // native sample was: each family's entries go back to metric order.
    for (auto& [name, list] : *natives) {
      std::stable_sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a.metric < b.metric; });
    }
  }
  out.erase(std::remove_if(out.begin() + static_cast<std::ptrdiff_t>(base), out.end(),
                           [](const prometheus::MetricFamily& f) { return f.metric.empty(); }),
            out.end());
}

namespace {

// How a family is served: prometheus-cpp's TextSerializer's five kinds.
std::string_view type_name(prometheus::MetricType t) noexcept {
  switch (t) {
    case prometheus::MetricType::Counter:
      return "counter";
    case prometheus::MetricType::Gauge:
      return "gauge";
    case prometheus::MetricType::Summary:
      return "summary";
    case prometheus::MetricType::Histogram:
      return "histogram";
    default:
      break;
  }
  return "untyped";
}

}  // namespace

std::uint64_t SeriesState::render(std::string& out, const std::function<bool(std::string_view)>& drop) const {
  using PT = prometheus::MetricType;
  // A family as this render takes it: 16 bytes, as a Family (a page of 1M
  // families fills 16 MB of fresh pages for them, not 40).
  struct Head {
    const char* name_at;    // families_ never shrinks and a family's name never changes
    std::uint32_t help_id;  // in `helps`
    std::uint16_t name_len;
    std::uint8_t kind;  // PT
    bool skip : 1;
    bool prom : 1;
    bool many : 1;
    [[nodiscard]] std::string_view name() const noexcept { return {name_at, name_len}; }
    [[nodiscard]] PT type() const noexcept { return static_cast<PT>(kind); }
  };
  static_assert(sizeof(Head) == 16);
  std::vector<Head> heads;
  std::vector<const std::string*> helps;  // help_texts_ when the heads were taken: interned, never freed
  {
    std::lock_guard lock(families_mu_);
    helps = help_texts_;
    common::reserve_large(heads, families_.size());
    for (std::size_t i = 0; i < families_.size(); ++i) {
      const Family& f = families_[i];
      heads.push_back(Head{f.name_at, f.help_id, f.name_len, static_cast<std::uint8_t>(to_prometheus(f.type)),
                           f.conflict, f.prom, f.many});
    }
  }
  const auto help = [&](const Head& h) { return help_in(helps, h.help_id); };
  // Most families of a StatsD page have one series each (every name its
  // own family). A family that has never held two series at once is written
  // straight into the page where the walk meets it, head and line; the
  // others' lines go to `body` as segments and follow in family order. The
  // page's families are in no set order (the text format asks none), each
  // family's lines together. A family per series then costs no second copy of
  // its text and no segment (at 1M names, ~120 MB and 16 MB less to fill).
  const std::size_t base = out.size();
  // Buffers are sized for the series there are now at the last render's
  // bytes (or segments) per series, a quarter more, and at least 128 bytes
  // (one segment) per series. Unwritten room costs address space only, while
  // a buffer short of a 1M-series page is copied at each doubling, 4 KiB pages
  // at a time (a first scrape of 1M series took over a second that way).
  const std::size_t series_now = counters_.series.load(std::memory_order_relaxed);
  const auto at_rate = [&](const std::atomic<std::size_t>& per_series16, std::size_t least16) {
    return series_now * std::max(per_series16.load(std::memory_order_relaxed), least16) / 16;
  };
  const auto sized = [&](const std::atomic<std::size_t>& per_series16, std::size_t least16) {
    return at_rate(per_series16, least16) * 5 / 4;
  };
  const auto keep_rate = [](std::atomic<std::size_t>& per_series16, std::size_t amount, std::size_t series) {
    if (series != 0) per_series16.store(amount * 16 / series, std::memory_order_relaxed);
  };
  for (const bool direct : {true, false}) {
    out.resize(base);
    std::optional<common::Prefault> prefault;
    if (direct) {
      common::reserve_large(out, base + sized(render_page_rate_, 128 * 16));
      // The page's fresh pages are zeroed on another core while the walk
      // writes (at 1M series a third of a render's time was the kernel's
      // zeroing in its page faults): as many as the last render's rate
      // says the page fills, not the quarter more reserved.
      prefault.emplace(out.data() + base, std::min(at_rate(render_page_rate_, 128 * 16), out.capacity() - base));
    }
    std::uint64_t dropped = 0;
    // The shards are walked once, one lock at a time, each series' lines
    // appended to one buffer as a segment tagged with its family; the page is
    // the segments in family order (a stable counting sort keeps each family's
    // in the order met). A buffer per family cost an allocation per family,
    // and with a family per series (every StatsD name its own) one per series.
    struct Segment {
      std::size_t at;
      std::uint32_t size;
      std::uint32_t family;
    };
    // Backed by huge pages (see large_buffer.hpp).
    std::string body;
    common::reserve_large(body, sized(render_body_rate_, 128 * 16));
    std::vector<Segment> segments;
    common::reserve_large(segments, sized(render_segments_rate_, 16));
    std::size_t walked = 0;  // series
    const auto close = [&](std::uint32_t family, std::size_t start) {
      if (body.size() > start) {
        segments.push_back(Segment{start, static_cast<std::uint32_t>(body.size() - start), family});
      }
    };
    std::vector<std::uint32_t> samples;  // per family
    common::resize_large(samples, heads.size());
    // A Prometheus histogram's or summary's samples come as separate series:
    // one group per family and label set without `le` / `quantile`, written
    // after the walk in the order the groups were first met.
    struct Group {
      std::uint32_t family = 0;
      std::string labels;
      std::uint16_t label_count = 0;
      std::string_view own;  // the label left out of `labels`
      struct Point {
        double bound;  // le or quantile
        double value;  // a quantile's value
        double count;  // a bucket's count
      };
      std::vector<Point> points;
      double sum = 0;
      double count = 0;
      bool native = false;  // a native histogram sample: no +Inf bucket unless classic buckets came too
    };
    std::vector<Group> groups;
    std::map<std::pair<std::uint32_t, std::string>, std::size_t> group_at;
    std::string group_key;
    std::string number;
    const auto label_of = [&](double v) -> std::string_view {
      number.clear();
      text::append_double(number, v);
      return number;
    };
    const auto add_prom = [&](const Series& se, std::span<const std::byte> labels, PT type, std::string& t) {
      const double v = se.values()[0];
      const std::string_view name = heads[se.family].name();
      const bool native = !se.native_values().empty();
      if (native && type != PT::Histogram) return;  // a native gaugehistogram sample: as collect()
      if (type != PT::Histogram && type != PT::Summary) {
        ++samples[se.family];
        text::append_head(t, name, "", labels, se.label_count());
        text::append_double(t, v);
        t.push_back('\n');
        return;
      }
      std::string_view own;
      double bound = 0;
      if (!group_of(se, type == PT::Histogram, group_key, own, bound)) return;
      const bool owns = !own.empty();
      auto [it, fresh] = group_at.try_emplace({se.family, group_key}, groups.size());
      if (fresh) {
        ++samples[se.family];
        Group& g = groups.emplace_back();
        g.family = se.family;
        g.labels.assign(reinterpret_cast<const char*>(labels.data()), labels.size());
        g.label_count = se.label_count();
        if (owns) g.own = own;
      }
      Group& g = groups[it->second];
      if (native) {
        // A relayed native histogram sample: the text format has no native
        // buckets, so its _count and _sum only (no classic bucket invented).
        g.count = se.values()[0];
        g.sum = se.values()[1];
        g.native = true;
        return;
      }
      if (type == PT::Histogram) {
        if (se.role == Role::kBucket) g.points.push_back({bound, 0, v});
        if (se.role == Role::kSum) g.sum = v;
        if (se.role == Role::kCount) g.count = v;
      } else {
        if (se.role == Role::kValue) g.points.push_back({bound, v, 0});
        if (se.role == Role::kSum) g.sum = v;
        if (se.role == Role::kCount) g.count = v;
      }
    };
    // One series' lines (not a Prometheus family's: add_prom) appended to t.
    const auto write_lines = [&](const Series& se, const Head& h, std::span<const std::byte> labels, std::string& t) {
      const std::span<const double> v = se.values();
      switch (h.type()) {
        case PT::Summary:
          text::append_head(t, h.name(), "_count", labels, se.label_count());
          text::append_count(t, v[0]);
          t.push_back('\n');
          text::append_head(t, h.name(), "_sum", labels, se.label_count());
          text::append_double(t, v[1]);
          t.push_back('\n');
          for (std::size_t i = 2; i + 1 < v.size(); i += 2) {
            text::append_head(t, h.name(), "", labels, se.label_count(), {"quantile", label_of(v[i])});
            text::append_double(t, v[i + 1]);
            t.push_back('\n');
          }
          break;
        case PT::Histogram: {
          text::append_head(t, h.name(), "_count", labels, se.label_count());
          text::append_count(t, v[0]);
          t.push_back('\n');
          text::append_head(t, h.name(), "_sum", labels, se.label_count());
          text::append_double(t, v[1]);
          t.push_back('\n');
          double last = -std::numeric_limits<double>::infinity();
          for (std::size_t i = 2; i + 1 < v.size(); i += 2) {
            text::append_head(t, h.name(), "_bucket", labels, se.label_count(), {"le", label_of(v[i])});
            text::append_count(t, v[i + 1]);
            t.push_back('\n');
            last = v[i];
          }
          if (last != std::numeric_limits<double>::infinity()) {
            text::append_head(t, h.name(), "_bucket", labels, se.label_count(), {"le", "+Inf"});
            text::append_count(t, v[0]);
            t.push_back('\n');
          }
          break;
        }
        default:
          text::append_head(t, h.name(), "", labels, se.label_count());
          text::append_double(t, v[0]);
          t.push_back('\n');
          break;
      }
    };
    bool conflict = false;
    for (const Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      for (std::size_t at = 0; at < s.map.size(); ++at) {
        // Every read of the walk misses the cache unless fetched ahead, each
        // from the one fetched before it: the series (in turn, but across
        // pages the hardware does not follow), its family's head, then the
        // family's name (hashed by `drop` and written) and sample count.
        if (at + 4 * kFetchAhead < s.map.size()) {
          const auto* e = reinterpret_cast<const char*>(&s.map.entry(at + 4 * kFetchAhead));
          __builtin_prefetch(e);
          __builtin_prefetch(e + sizeof(SeriesTable::Entry) - 1);
        }
        if (at + 2 * kFetchAhead < s.map.size()) {
          const std::uint32_t f = s.map.entry(at + 2 * kFetchAhead).series.family;
          if (f < heads.size()) __builtin_prefetch(&heads[f]);
        }
        if (at + kFetchAhead < s.map.size()) {
          const std::uint32_t f = s.map.entry(at + kFetchAhead).series.family;
          if (f < heads.size()) {
            __builtin_prefetch(heads[f].name_at);
            __builtin_prefetch(&samples[f], 1);
          }
        }
        ++walked;
        const Series& se = s.map.entry(at).series;
        if (se.family >= heads.size() || heads[se.family].skip) continue;
        const Head& h = heads[se.family];
        const std::size_t start = body.size();
        const auto labels = se.labels();
        if (h.prom) {
          add_prom(se, labels, h.type(), body);
          close(se.family, start);
          continue;
        }
        if (direct && !h.many) {
          // The family's one series, written with its head where the walk
          // meets it. A second one was made after the heads were taken: the
          // page is written again the long way (rare: it takes a family that
          // had one series gaining another during the walk).
          if (samples[se.family]++ != 0) {
            conflict = true;
            break;
          }
          if (drop && drop(h.name())) {
            ++dropped;
            continue;
          }
          text::append_family_head(out, h.name(), help(h), type_name(h.type()));
          write_lines(se, h, labels, out);
          continue;
        }
        ++samples[se.family];
        write_lines(se, h, labels, body);
        close(se.family, start);
      }
      if (conflict) break;
    }
    if (conflict) {
      counters_.render_rewrites.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    for (Group& g : groups) {
      const Head& h = heads[g.family];
      std::string& t = body;
      const std::size_t start = body.size();
      const auto labels = std::as_bytes(std::span(g.labels.data(), g.labels.size()));
      std::stable_sort(g.points.begin(), g.points.end(),
                       [](const auto& a, const auto& b) { return a.bound < b.bound; });
      text::append_head(t, h.name(), "_count", labels, g.label_count, {}, g.own);
      text::append_count(t, g.count);
      t.push_back('\n');
      text::append_head(t, h.name(), "_sum", labels, g.label_count, {}, g.own);
      text::append_double(t, g.sum);
      t.push_back('\n');
      const bool histogram = h.type() == PT::Histogram;
      double last = -std::numeric_limits<double>::infinity();
      for (const auto& p : g.points) {
        text::append_head(t, h.name(), histogram ? "_bucket" : "", labels, g.label_count,
                          {histogram ? "le" : "quantile", label_of(p.bound)}, g.own);
        if (histogram) {
          text::append_count(t, p.count);
        } else {
          text::append_double(t, p.value);
        }
        t.push_back('\n');
        last = p.bound;
      }
      if (histogram && last != std::numeric_limits<double>::infinity() && !(g.native && g.points.empty())) {
        text::append_head(t, h.name(), "_bucket", labels, g.label_count, {"le", "+Inf"}, g.own);
        text::append_count(t, g.count);
        t.push_back('\n');
      }
      close(g.family, start);
    }
    // first[f]..first[f + 1]: family f's segments in `sorted`.
    std::vector<std::uint32_t> first;
    common::resize_large(first, heads.size() + 1);
    for (const Segment& sg : segments) ++first[sg.family + 1];
    for (std::size_t i = 0; i < heads.size(); ++i) first[i + 1] += first[i];
    std::vector<Segment> sorted;
    common::resize_large(sorted, segments.size());
    {
      // first[f] is each family's next free place while placing, and its end
      // after: shifted back by one family below.
      for (const Segment& sg : segments) sorted[first[sg.family]++] = sg;
      for (std::size_t i = heads.size(); i > 0; --i) first[i] = first[i - 1];
      first[0] = 0;
    }
    segments = {};
    std::size_t bytes = out.size() + body.size();
    for (std::size_t i = 0; i < heads.size(); ++i) {
      if (first[i] != first[i + 1]) bytes += heads[i].name().size() * 2 + help(heads[i]).size() + 32;
    }
    keep_rate(render_body_rate_, body.size(), walked);
    keep_rate(render_segments_rate_, sorted.size(), walked);
    common::reserve_large(out, bytes);
    for (std::size_t i = 0; i < heads.size(); ++i) {
      if (first[i] == first[i + 1]) continue;
      if (drop && drop(heads[i].name())) {
        dropped += samples[i];
        continue;
      }
      text::append_family_head(out, heads[i].name(), help(heads[i]), type_name(heads[i].type()));
      for (std::uint32_t k = first[i]; k < first[i + 1]; ++k) {
        // The segments lie in the walk's order in `body`: fetched ahead too.
        if (k + kFetchAhead < sorted.size()) __builtin_prefetch(body.data() + sorted[k + kFetchAhead].at);
        const Segment& sg = sorted[k];
        out.append(body, sg.at, sg.size);
      }
    }
    keep_rate(render_page_rate_, out.size() - base, walked);
    return dropped;
  }
  return 0;  // not reached: the second pass writes no family on its own
}

}  // namespace ringpipe::exporters
