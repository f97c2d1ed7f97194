#include "shard.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>

namespace ringpipe::processors::detail {
namespace {

constexpr std::uint32_t kNoExt = UINT32_MAX;

// Encodes entries into records, opening a new record when one is full. After
// the sink refuses space, every further write fails (the flush stalls).
class Emitter {
 public:
  Emitter(RecordSink& sink, const BatchOrigin& origin, std::size_t max_record_bytes)
      : sink_(sink), origin_(origin), max_(max_record_bytes) {}

  bool entry(const SeriesEntry& e) noexcept {
    if (failed_) return false;
    if (writer_ && writer_->append(e)) return counted();
    close();
    if (!open(sizeof(metric::MetricBatchHeader) + metric::entry_size(e)) || !writer_->append(e)) return fail();
    return counted();
  }
  bool marker(EntryKind k, std::uint64_t id) noexcept {
    if (failed_) return false;
    if (writer_ && writer_->append_marker(k, id)) return counted();
    close();
    if (!open(sizeof(metric::MetricBatchHeader) + metric::kMarkerEntrySize) || !writer_->append_marker(k, id)) return fail();
    return counted();
  }
  void close() noexcept {
    if (!writer_) return;
    const bool any = !writer_->empty();
    const std::size_t used = writer_->finish();
    sink_.commit_record(any ? used : 0);
    if (any) ++records_;
    writer_.reset();
  }
  [[nodiscard]] bool fits(const SeriesEntry& e) const noexcept {
    return sizeof(metric::MetricBatchHeader) + metric::entry_size(e) <= max_;
  }
  [[nodiscard]] bool failed() const noexcept { return failed_; }
  [[nodiscard]] std::uint64_t records() const noexcept { return records_; }
  [[nodiscard]] std::uint64_t entries() const noexcept { return entries_; }

 private:
  bool open(std::size_t need) noexcept {
    const std::span<std::byte> buf = sink_.begin_record(need);
    if (buf.size() < need) {
      if (!buf.empty()) sink_.commit_record(0);
      return false;
    }
    writer_.emplace(buf, origin_);
    return true;
  }
  bool counted() noexcept {
    ++entries_;
    return true;
  }
  bool fail() noexcept {
    if (writer_) close();
    failed_ = true;
    return false;
  }

  RecordSink& sink_;
  BatchOrigin origin_;
  std::size_t max_;
  std::optional<metric::MetricBatchWriter> writer_;
  bool failed_ = false;
  std::uint64_t records_ = 0;
  std::uint64_t entries_ = 0;
};

}  // namespace

std::uint32_t LabelArena::rounded(std::uint32_t n) noexcept {
  const std::uint32_t r = (n + 7) & ~7U;
  if (r <= 512) return r;
  std::uint32_t p = 1024;
  while (p < r) p *= 2;
  return p;
}

std::size_t LabelArena::size_class(std::uint32_t r) noexcept {
  if (r <= 512) return r / 8;
  std::size_t c = 65;
  for (std::uint32_t p = 1024; p < r; p *= 2) ++c;
  return c;
}

std::uint32_t LabelArena::store(const std::byte* p, std::uint32_t n) {
  if (n == 0) return 0;
  const std::uint32_t r = rounded(n);
  const std::size_t c = size_class(r);
  std::uint32_t off;
  if (c < free_.size() && !free_[c].empty()) {
    off = free_[c].back();
    free_[c].pop_back();
  } else {
    off = static_cast<std::uint32_t>(data_.size());
    data_.resize(data_.size() + r);
  }
  std::memcpy(data_.data() + off, p, n);
  return off;
}

void LabelArena::release(std::uint32_t off, std::uint32_t n) {
  if (n == 0) return;
  const std::size_t c = size_class(rounded(n));
  if (free_.size() <= c) free_.resize(c + 1);
  free_[c].push_back(off);
}

Shard::Shard(std::uint16_t index, std::uint16_t count, FamilyRegistry& registry,
             std::shared_ptr<const SpecTable> specs, const EngineOptions& options, std::uint64_t instance_id,
             StateStore* store, std::int64_t now_ns)
    : index_(index),
      count_(count),
      registry_(&registry),
      specs_(std::move(specs)),
      set_window_ns_(std::max<std::int64_t>(1, options.set_window.count())),
      max_set_members_(std::max<std::uint32_t>(1, options.max_set_members)),
      max_record_bytes_(options.max_record_bytes),
      instance_id_(instance_id),
      store_(store) {
  if (store_ != nullptr) restore(now_ns);
}

void Shard::mark_dirty(std::uint32_t idx) noexcept {
  Series& se = series_[idx];
  if (se.flags & kDirty) return;
  se.flags |= kDirty;
  dirty_.push_back(idx);
}

std::uint32_t Shard::create_series(const MappedSample& m, const std::byte* labels, std::int64_t now_ns) noexcept {
  if (!registry_->try_add_series(*m.family)) {
    m.family->dropped_cardinality.fetch_add(1, std::memory_order_relaxed);
    ++stats_.dropped_cardinality;
    return FlatIndex::kNone;
  }
  if (store_ != nullptr && free_series_.empty() && series_.size() >= store_->geometry().slot_capacity) {
    registry_->remove_series(*m.family);
    ++stats_.state_full;
    return FlatIndex::kNone;
  }
  std::uint32_t idx;
  if (!free_series_.empty()) {
    idx = free_series_.back();
    free_series_.pop_back();
  } else {
    idx = static_cast<std::uint32_t>(series_.size());
    series_.emplace_back();
    tx_mark_.push_back(0);
  }
  Series& se = series_[idx];
  se = Series{};
  se.hash = m.series_hash;
  se.family = m.family;
  // With a store the key lives once, in the series' store block (persist_new sets key_off).
  se.key_off = store_ == nullptr ? arena_.store(labels, m.labels_len) : 0;
  se.key_len = m.labels_len;
  se.label_count = m.label_count;
  se.kind = static_cast<std::uint8_t>(m.family->kind);
  se.flags = kLive;
  se.ext = kNoExt;
  const std::uint32_t spec = m.spec < specs_->size() ? m.spec : 0;
  switch (m.family->kind) {
    case FamilyKind::kSummary: {
      std::uint32_t e;
      if (!free_summaries_.empty()) {
        e = free_summaries_.back();
        free_summaries_.pop_back();
      } else {
        e = static_cast<std::uint32_t>(summaries_.size());
        summaries_.emplace_back();
      }
      SummaryState& s = summaries_[e];
      const ObserverSpec& sp = (*specs_)[spec];
      s.count = s.sum = 0;
      s.spec = spec;
      s.head = 0;
      s.head_start_ns = now_ns;
      s.window.resize(sp.age_buckets);
      for (Sketch& k : s.window) k.clear();
      se.ext = e;
      break;
    }
    case FamilyKind::kHistogram: {
      std::uint32_t e;
      if (!free_histograms_.empty()) {
        e = free_histograms_.back();
        free_histograms_.pop_back();
      } else {
        e = static_cast<std::uint32_t>(histograms_.size());
        histograms_.emplace_back();
      }
      HistogramState& h = histograms_[e];
      h.count = h.sum = 0;
      h.spec = spec;
      h.counts.assign((*specs_)[spec].buckets.size() + 1, 0.0);
      se.ext = e;
      break;
    }
    case FamilyKind::kSet: {
      std::uint32_t e;
      if (!free_sets_.empty()) {
        e = free_sets_.back();
        free_sets_.pop_back();
      } else {
        e = static_cast<std::uint32_t>(sets_.size());
        sets_.emplace_back();
      }
      SetState& st = sets_[e];
      st.window_id = now_ns / set_window_ns_;
      st.size = 0;
      if (st.members.size() != 16) st.members.assign(16, 0);
      std::fill(st.members.begin(), st.members.end(), 0);
      se.ext = e;
      break;
    }
    default: se.flags |= kPublished; break;
  }
  if (m.family->kind == FamilyKind::kSummary) se.flags |= kPublished;
  if (m.family->kind == FamilyKind::kHistogram) se.flags |= kPublished;
  if (store_ != nullptr && !persist_new(idx, labels)) {
    ++stats_.state_full;
    switch (static_cast<FamilyKind>(se.kind)) {
      case FamilyKind::kSummary: free_summaries_.push_back(se.ext); break;
      case FamilyKind::kHistogram: free_histograms_.push_back(se.ext); break;
      case FamilyKind::kSet: free_sets_.push_back(se.ext); break;
      default: break;
    }
    registry_->remove_series(*m.family);
    se.flags = 0;
    free_series_.push_back(idx);
    return FlatIndex::kNone;
  }
  index_map_.insert(se.hash, idx);
  ++live_;
  ++stats_.series_created;
  return idx;
}

void Shard::free_series(std::uint32_t idx) noexcept {
  Series& se = series_[idx];
  persist_free(idx);
  index_map_.erase(se.hash, idx);
  if (store_ == nullptr) arena_.release(se.key_off, se.key_len);
  switch (static_cast<FamilyKind>(se.kind)) {
    case FamilyKind::kSummary: free_summaries_.push_back(se.ext); break;
    case FamilyKind::kHistogram: free_histograms_.push_back(se.ext); break;
    case FamilyKind::kSet: free_sets_.push_back(se.ext); break;
    default: break;
  }
  registry_->remove_series(*se.family);
  se.flags = 0;
  free_series_.push_back(idx);
  --live_;
  ++stats_.series_expired;
}

void Shard::add_member(SetState& st, std::uint64_t member) noexcept {
  if (member == 0) member = 1;
  std::size_t mask = st.members.size() - 1;
  for (std::size_t i = member & mask;; i = (i + 1) & mask) {
    if (st.members[i] == member) return;
    if (st.members[i] == 0) break;
  }
  if (st.size >= max_set_members_) {
    ++stats_.set_members_over_limit;
    return;
  }
  if ((st.size + 1) * 2 > st.members.size()) {
    std::vector<std::uint64_t> old(st.members.size() * 2, 0);
    old.swap(st.members);
    mask = st.members.size() - 1;
    for (const std::uint64_t v : old) {
      if (v == 0) continue;
      std::size_t i = v & mask;
      while (st.members[i] != 0) i = (i + 1) & mask;
      st.members[i] = v;
    }
  }
  std::size_t i = member & mask;
  while (st.members[i] != 0) i = (i + 1) & mask;
  st.members[i] = member;
  ++st.size;
}

bool Shard::roll_set(Series& se, SetState& st, std::int64_t window_id) noexcept {
  if (window_id <= st.window_id) return false;
  // The published value is the distinct count of the last completed window.
  se.value = (window_id == st.window_id + 1) ? static_cast<double>(st.size) : 0.0;
  se.flags |= kPublished;
  st.window_id = window_id;
  st.size = 0;
  if (st.members.size() > 1024 && st.members.size() > max_set_members_ / 4) st.members.assign(16, 0);
  std::fill(st.members.begin(), st.members.end(), 0);
  return true;
}

bool Shard::rotate_summary(SummaryState& s, std::int64_t now_ns) noexcept {
  const ObserverSpec& sp = (*specs_)[s.spec];
  if (now_ns < s.head_start_ns + sp.bucket_ns) return false;
  const std::int64_t steps = (now_ns - s.head_start_ns) / sp.bucket_ns;
  bool changed = false;
  const auto n = static_cast<std::int64_t>(s.window.size());
  for (std::int64_t k = 0; k < std::min(steps, n); ++k) {
    s.head = (s.head + 1) % static_cast<std::uint32_t>(n);
    changed |= !s.window[s.head].empty();
    s.window[s.head].clear();
  }
  s.head_start_ns += steps * sp.bucket_ns;
  return changed;
}

void Shard::apply(const MappedSample& m, const std::byte* label_base, std::int64_t now_ns) noexcept {
  const std::byte* labels = label_base + m.labels_off;
  std::uint32_t idx = index_map_.find(m.series_hash, [&](std::uint32_t v) {
    const Series& se = series_[v];
    // An empty key is never stored in the arena (whose data() may be null).
    return se.hash == m.series_hash && se.family == m.family && se.key_len == m.labels_len &&
           (m.labels_len == 0 || std::memcmp(key_of(se), labels, m.labels_len) == 0);
  });
  if (idx == FlatIndex::kNone) {
    idx = create_series(m, labels, now_ns);
    if (idx == FlatIndex::kNone) return;
  }
  Series& se = series_[idx];
  se.flags &= static_cast<std::uint8_t>(~kExpiring);
  se.expires_ns = m.ttl_ns > 0 ? now_ns + m.ttl_ns : 0;
  switch (m.op) {
    case Op::kAdd: se.value += m.value; break;
    case Op::kSet: se.value = m.value; break;
    case Op::kObserve:
      if (se.kind == static_cast<std::uint8_t>(FamilyKind::kSummary)) {
        SummaryState& s = summaries_[se.ext];
        rotate_summary(s, now_ns);
        s.count += m.weight;
        s.sum += m.value * m.weight;
        s.window[s.head].add(m.value, m.weight);
        if (!(se.flags & kActive)) {
          se.flags |= kActive;
          active_.push_back(idx);
        }
      } else {
        HistogramState& h = histograms_[se.ext];
        const std::vector<double>& b = (*specs_)[h.spec].buckets;
        // le semantics: the first bucket whose upper bound is >= value.
        const auto it = std::lower_bound(b.begin(), b.end(), m.value);
        h.counts[static_cast<std::size_t>(it - b.begin())] += m.weight;
        h.count += m.weight;
        h.sum += m.value * m.weight;
      }
      break;
    case Op::kSetMember: {
      SetState& st = sets_[se.ext];
      if (roll_set(se, st, now_ns / set_window_ns_)) mark_dirty(idx);
      add_member(st, m.member);
      if (!(se.flags & kActive)) {
        se.flags |= kActive;
        active_.push_back(idx);
      }
      ++stats_.samples_applied;
      persist(idx);
      return;  // a set changes its published value only when a window closes
    }
  }
  ++stats_.samples_applied;
  mark_dirty(idx);
  persist(idx);
}

void Shard::apply_batch(std::span<const MappedSample> ms, const std::byte* label_base,
                        std::int64_t now_ns) noexcept {
  constexpr std::size_t kSlotAhead = 16;
  constexpr std::size_t kSeriesAhead = 10;
  constexpr std::size_t kKeyAhead = 5;
  const std::size_t n = ms.size();
  StateSlot* const slots = store_ != nullptr ? store_->slots() : nullptr;
  for (std::size_t i = 0; i < n; ++i) {
    if (i + kSlotAhead < n) index_map_.prefetch(ms[i + kSlotAhead].series_hash);
    if (i + kSeriesAhead < n) {
      const std::uint32_t v = index_map_.home_value(ms[i + kSeriesAhead].series_hash);
      if (v != FlatIndex::kNone) {
        __builtin_prefetch(&series_[v]);
        if (slots != nullptr) __builtin_prefetch(&slots[v], 1);  // persist() logs and writes it
      }
    }
    if (i + kKeyAhead < n) {
      const MappedSample& m = ms[i + kKeyAhead];
      const std::uint32_t v = index_map_.home_value(m.series_hash);
      if (v != FlatIndex::kNone) __builtin_prefetch(key_of(series_[v]));
      __builtin_prefetch(label_base + m.labels_off);  // the sample's key, compared against it
    }
    apply(ms[i], label_base, now_ns);
  }
}

bool Shard::publishable(const Series& se) const noexcept { return (se.flags & kPublished) != 0; }

void Shard::encode(const Series& se, EntryKind kind, SeriesEntry& e) noexcept {
  const Family& f = *se.family;
  e.kind = kind;
  e.type = metric_type_of(f.kind);
  e.flags = f.kind == FamilyKind::kSet ? metric::kEntryFromSet : 0;
  e.key = se.hash;
  e.name = f.name;
  e.help = f.help;
  e.label_bytes = std::span<const std::byte>(key_of(se), se.key_len);
  e.label_count = se.label_count;
  values_.clear();
  if (kind == EntryKind::kSeries) {
    switch (f.kind) {
      case FamilyKind::kCounter:
      case FamilyKind::kGauge:
      case FamilyKind::kSet: values_.push_back(se.value); break;
      case FamilyKind::kSummary: {
        const SummaryState& s = summaries_[se.ext];
        values_.push_back(s.count);
        values_.push_back(s.sum);
        merged_.clear();
        for (const Sketch& k : s.window) k.merge_into(merged_);
        for (const double q : (*specs_)[s.spec].quantiles) {
          values_.push_back(q);
          values_.push_back(merged_.quantile(q));
        }
        break;
      }
      case FamilyKind::kHistogram: {
        const HistogramState& h = histograms_[se.ext];
        const std::vector<double>& b = (*specs_)[h.spec].buckets;
        values_.push_back(h.count);
        values_.push_back(h.sum);
        double cum = 0;
        for (std::size_t i = 0; i < b.size(); ++i) {
          cum += h.counts[i];
          values_.push_back(b[i]);
          values_.push_back(cum);
        }
        values_.push_back(std::numeric_limits<double>::infinity());
        values_.push_back(h.count);
        break;
      }
    }
  }
  e.values = values_;
}

void Shard::flush(std::int64_t now_ns, std::int64_t wall_ns, RecordSink& sink, bool snapshot) noexcept {
  ++flush_seq_;
  ++stats_.flushes;
  // Expiry runs on the processor's clock, whether anyone scrapes or not.
  for (std::uint32_t i = 0; i < series_.size(); ++i) {
    Series& se = series_[i];
    if ((se.flags & kLive) && se.expires_ns != 0 && now_ns >= se.expires_ns && !(se.flags & kExpiring)) {
      se.flags |= kExpiring;
      mark_dirty(i);
    }
  }
  // Windows move with time too: summaries age out, set windows close.
  const std::int64_t window_id = now_ns / set_window_ns_;
  std::size_t keep = 0;
  for (const std::uint32_t idx : active_) {
    Series& se = series_[idx];
    if (!(se.flags & kLive) || !(se.flags & kActive)) continue;
    bool still_active = true;
    if (se.kind == static_cast<std::uint8_t>(FamilyKind::kSummary)) {
      SummaryState& s = summaries_[se.ext];
      if (rotate_summary(s, now_ns)) mark_dirty(idx);
      still_active = std::any_of(s.window.begin(), s.window.end(), [](const Sketch& k) { return !k.empty(); });
    } else {
      SetState& st = sets_[se.ext];
      if (roll_set(se, st, window_id)) {
        mark_dirty(idx);
        persist(idx);
      }
      still_active = st.size > 0 || se.value != 0;
    }
    if (still_active) {
      active_[keep++] = idx;
    } else {
      se.flags &= static_cast<std::uint8_t>(~kActive);
    }
  }
  active_.resize(keep);

  BatchOrigin origin;
  origin.shard = index_;
  origin.shard_count = count_;
  origin.instance_id = instance_id_;
  origin.flush_seq = flush_seq_;
  origin.flush_ns = wall_ns;
  Emitter em(sink, origin, max_record_bytes_);
  SeriesEntry e;

  if (snapshot) {
    em.marker(EntryKind::kSnapshotBegin, flush_seq_);
    for (std::uint32_t i = 0; i < series_.size() && !em.failed(); ++i) {
      const Series& se = series_[i];
      if (!(se.flags & kLive)) continue;
      const bool expiring = (se.flags & kExpiring) != 0;
      if (!expiring && !publishable(se)) continue;
      encode(se, expiring ? EntryKind::kExpire : EntryKind::kSeries, e);
      if (em.fits(e)) em.entry(e);
    }
    em.marker(EntryKind::kSnapshotEnd, flush_seq_);
    em.close();
    if (em.failed()) {
      ++stats_.flush_stalls;  // the engine asks for the snapshot again next flush
    } else {
      ++stats_.snapshots;
      for (const std::uint32_t idx : dirty_) {
        Series& se = series_[idx];
        se.flags &= static_cast<std::uint8_t>(~kDirty);
        if ((se.flags & kLive) && (se.flags & kExpiring)) free_series(idx);
      }
      dirty_.clear();
    }
  } else {
    std::size_t done = 0;
    for (; done < dirty_.size(); ++done) {
      const std::uint32_t idx = dirty_[done];
      Series& se = series_[idx];
      if (!(se.flags & kLive)) continue;
      const bool expiring = (se.flags & kExpiring) != 0;
      if (expiring || publishable(se)) {
        encode(se, expiring ? EntryKind::kExpire : EntryKind::kSeries, e);
        if (em.fits(e) && !em.entry(e)) break;
      }
      se.flags &= static_cast<std::uint8_t>(~kDirty);
      if (expiring) free_series(idx);
    }
    em.close();
    if (em.failed()) ++stats_.flush_stalls;
    dirty_.erase(dirty_.begin(), dirty_.begin() + static_cast<std::ptrdiff_t>(done));
  }
  stats_.records_written += em.records();
  stats_.entries_written += em.entries();
  commit_state();
  sink.end_flush();
}

namespace {
constexpr std::uint32_t pad8(std::uint32_t n) noexcept { return (n + 7) & ~7U; }
}  // namespace

std::uint32_t Shard::alloc_block(std::uint32_t bytes, std::uint32_t owner) noexcept {
  const std::uint32_t r = LabelArena::rounded(bytes);
  const std::size_t c = LabelArena::size_class(r);
  std::uint32_t off;
  if (owner != kFamilyOwner && c < block_free_.size() && !block_free_[c].empty()) {
    off = block_free_[c].back();
    block_free_[c].pop_back();
  } else {
    StateControl& ctl = store_->control();
    if (ctl.arena_used + r > store_->geometry().arena_bytes || !store_->reserve_arena(ctl.arena_used + r) ||
        !store_->log_control()) {
      return UINT32_MAX;
    }
    off = static_cast<std::uint32_t>(ctl.arena_used);
    ctl.arena_used += r;
  }
  // No undo for block bytes: a block belongs to a slot only while that
  // committed slot points at it, and blocks freed in an open transaction are
  // not reused before it commits.
  const BlockHeader bh{r, owner};
  std::memcpy(store_->arena() + off, &bh, sizeof bh);
  return off;
}

std::uint32_t Shard::family_block(const Family& f) noexcept {
  if (const auto it = family_off_.find(&f); it != family_off_.end()) return it->second;
  const auto name_len = static_cast<std::uint16_t>(std::min<std::size_t>(f.name.size(), UINT16_MAX));
  const auto help_len = static_cast<std::uint16_t>(std::min<std::size_t>(f.help.size(), UINT16_MAX));
  const std::uint32_t off = alloc_block(16 + name_len + help_len, kFamilyOwner);
  if (off == UINT32_MAX) return off;
  std::byte* p = store_->arena() + off + sizeof(BlockHeader);
  const std::uint8_t head[8] = {static_cast<std::uint8_t>(f.kind), 0,
                                static_cast<std::uint8_t>(name_len), static_cast<std::uint8_t>(name_len >> 8),
                                static_cast<std::uint8_t>(help_len), static_cast<std::uint8_t>(help_len >> 8), 0, 0};
  std::memcpy(p, head, sizeof head);
  std::memcpy(p + 8, f.name.data(), name_len);
  std::memcpy(p + 8 + name_len, f.help.data(), help_len);
  family_off_.emplace(&f, off);  // allocates once per family
  return off;
}

bool Shard::persist_new(std::uint32_t idx, const std::byte* labels) noexcept {
  // The slot's page gets file space before it is touched (a full file system
  // then refuses the series instead of killing the process with SIGBUS).
  if (!store_->reserve_slots(std::uint64_t{idx} + 1)) return false;
  Series& se = series_[idx];
  const std::uint32_t fam = family_block(*se.family);
  if (fam == UINT32_MAX) return false;
  const std::uint32_t hist_n = se.kind == static_cast<std::uint8_t>(FamilyKind::kHistogram)
                                   ? static_cast<std::uint32_t>(histograms_[se.ext].counts.size())
                                   : 0;
  const std::uint32_t block = alloc_block(8 + pad8(se.key_len) + hist_n * 8, idx + 1);
  if (block == UINT32_MAX) return false;
  std::byte* p = store_->arena() + block + sizeof(BlockHeader);
  if (se.key_len != 0) std::memcpy(p, labels, se.key_len);  // labels may be null when empty
  std::memset(p + pad8(se.key_len), 0, std::size_t{hist_n} * 8);
  StateSlot& sl = store_->slots()[idx];
  if (!log_whole_slot(idx)) return false;
  StateControl& ctl = store_->control();
  if (idx >= ctl.slot_high) {
    if (!store_->log_control()) return false;
    ctl.slot_high = idx + 1;
  }
  sl = StateSlot{};
  sl.hash = se.hash;
  sl.block_off = block;
  sl.family_off = fam;
  sl.key_len = se.key_len;
  sl.label_count = se.label_count;
  sl.kind = se.kind;
  sl.spec = se.kind == static_cast<std::uint8_t>(FamilyKind::kHistogram) ? histograms_[se.ext].spec
            : se.kind == static_cast<std::uint8_t>(FamilyKind::kSummary) ? summaries_[se.ext].spec
                                                                          : 0;
  sl.hist_n = hist_n;
  sl.live = 1;
  se.key_off = block + static_cast<std::uint32_t>(sizeof(BlockHeader));
  return true;
}

bool Shard::log_whole_slot(std::uint32_t idx) noexcept {
  if (tx_mark_[idx] == (tx_ | kWholeSlotLogged)) return true;
  if (!store_->log(store_->offset_of(&store_->slots()[idx]), sizeof(StateSlot))) return false;
  tx_mark_[idx] = tx_ | kWholeSlotLogged;
  return true;
}

void Shard::persist(std::uint32_t idx) noexcept {
  if (store_ == nullptr) return;
  const Series& se = series_[idx];
  StateSlot& sl = store_->slots()[idx];
  const bool hist = se.kind == static_cast<std::uint8_t>(FamilyKind::kHistogram);
  const bool summary = se.kind == static_cast<std::uint8_t>(FamilyKind::kSummary);
  std::byte* counts = store_->arena() + sl.block_off + sizeof(BlockHeader) + pad8(sl.key_len);
  if ((tx_mark_[idx] & ~kWholeSlotLogged) != tx_) {
    // Only the values change here: value and expires_ns, plus count and sum
    // of an observer (and a histogram's counts, in its block). A slot whose
    // whole image is logged later in this transaction (freed) is still
    // restored right: rollback runs newest first, so this older image wins.
    static_assert(offsetof(StateSlot, value) == 8 && offsetof(StateSlot, expires_ns) == 16 &&
                  offsetof(StateSlot, count) == 24 && offsetof(StateSlot, sum) == 32);
    const std::uint32_t len = summary || hist ? 32 : 16;
    if (!store_->log(store_->offset_of(&sl.value), len) ||
        (hist && !store_->log(store_->offset_of(counts), sl.hist_n * 8))) {
      ++stats_.state_full;
      return;
    }
    tx_mark_[idx] = tx_;
  }
  sl.value = se.value;
  sl.expires_ns = se.expires_ns;
  if (summary) {
    sl.count = summaries_[se.ext].count;
    sl.sum = summaries_[se.ext].sum;
  } else if (hist) {
    const HistogramState& h = histograms_[se.ext];
    sl.count = h.count;
    sl.sum = h.sum;
    std::memcpy(counts, h.counts.data(), std::min<std::size_t>(h.counts.size(), sl.hist_n) * 8);
  }
}

void Shard::persist_free(std::uint32_t idx) noexcept {
  if (store_ == nullptr) return;
  StateSlot& sl = store_->slots()[idx];
  if (!log_whole_slot(idx)) {
    ++stats_.state_full;
    return;
  }
  sl.live = 0;
  pending_free_.push_back(sl.block_off);
}

void Shard::commit_state() noexcept {
  if (store_ == nullptr) return;
  store_->commit();
  tx_ += 2;
  if (tx_ == 0) {  // wrapped: no mark may look like the new transaction's
    std::fill(tx_mark_.begin(), tx_mark_.end(), 0);
    tx_ = 2;
  }
  for (const std::uint32_t off : pending_free_) {
    BlockHeader bh;
    std::memcpy(&bh, store_->arena() + off, sizeof bh);
    const std::size_t c = LabelArena::size_class(bh.size);
    if (block_free_.size() <= c) block_free_.resize(c + 1);
    block_free_[c].push_back(off);
  }
  pending_free_.clear();
}

void Shard::apply_segments(std::span<const MappedSample> ms, std::span<const RecordSegment> segs,
                           const std::byte* label_base, std::int64_t now_ns) noexcept {
  std::uint32_t begin = 0;
  for (const RecordSegment& sg : segs) {
    const std::uint32_t end = std::min<std::uint32_t>(sg.end, static_cast<std::uint32_t>(ms.size()));
    if (end <= begin) continue;
    std::uint64_t* applied = nullptr;
    if (store_ != nullptr && sg.input < kStateMaxInputs && sg.lane < kStateMaxLanes) {
      applied = &store_->applied(sg.input)[sg.lane];
      if (sg.seq <= *applied) {  // committed before a restart: already counted
        stats_.state_samples_skipped += end - begin;
        begin = end;
        continue;
      }
      // Commit at a record boundary, so a record is never half applied.
      if (store_->undo_used() > store_->undo_capacity() / 2) commit_state();
    }
    apply_batch(ms.subspan(begin, end - begin), label_base, now_ns);
    if (applied != nullptr && store_->log(store_->offset_of(applied), sizeof *applied)) *applied = sg.seq;
    begin = end;
  }
  if (begin < ms.size()) apply_batch(ms.subspan(begin), label_base, now_ns);
  commit_state();
}

void Shard::sync_input(std::uint32_t input, std::uint64_t creation_id) noexcept {
  if (store_ == nullptr || input >= kStateMaxInputs) return;
  StateControl& ctl = store_->control();
  if (ctl.input_creation[input] == creation_id) return;
  std::uint64_t* a = store_->applied(input);
  if (!store_->log_control() || !store_->log(store_->offset_of(a), kStateMaxLanes * 8)) return;
  std::fill(a, a + kStateMaxLanes, 0);
  ctl.input_creation[input] = creation_id;
  commit_state();
}

void Shard::restore(std::int64_t now_ns) {
  StateStore& st = *store_;
  const StateControl& ctl = st.control();
  const std::uint64_t high = ctl.slot_high;
  const std::uint64_t used = ctl.arena_used;
  const std::byte* ar = st.arena();
  auto header_at = [&](std::uint64_t off, BlockHeader& bh) {
    if (off % 8 != 0 || off + sizeof bh > used) return false;
    std::memcpy(&bh, ar + off, sizeof bh);
    return bh.size >= sizeof bh && bh.size % 8 == 0 && off + bh.size <= used;
  };
  std::unordered_map<std::uint32_t, Family*> families;
  auto family_at = [&](std::uint32_t off) -> Family* {
    if (const auto it = families.find(off); it != families.end()) return it->second;
    BlockHeader bh;
    Family* f = nullptr;
    if (header_at(off, bh) && bh.owner == kFamilyOwner && bh.size >= 16) {
      const std::byte* p = ar + off + sizeof bh;
      const auto kind = static_cast<std::uint8_t>(p[0]);
      const std::uint32_t nl = static_cast<std::uint8_t>(p[2]) | (static_cast<std::uint32_t>(p[3]) << 8);
      const std::uint32_t hl = static_cast<std::uint8_t>(p[4]) | (static_cast<std::uint32_t>(p[5]) << 8);
      if (kind <= static_cast<std::uint8_t>(FamilyKind::kSet) && nl > 0 && 16 + nl + hl <= bh.size) {
        const std::string_view name(reinterpret_cast<const char*>(p + 8), nl);
        const std::string_view help(reinterpret_cast<const char*>(p + 8 + nl), hl);
        const FamilyRegistry::Lookup lk = registry_->get_or_create(name, static_cast<FamilyKind>(kind), help);
        if (lk.family != nullptr && !lk.conflict) f = lk.family;
      }
    }
    families.emplace(off, f);
    if (f != nullptr) family_off_.emplace(f, off);
    return f;
  };
  series_.resize(high);
  tx_mark_.assign(high, 0);
  for (std::uint32_t i = 0; i < high; ++i) {
    StateSlot& sl = st.slots()[i];
    Series& se = series_[i];
    se = Series{};
    se.flags = 0;
    if (!sl.live) {
      free_series_.push_back(i);
      continue;
    }
    BlockHeader bh;
    bool ok = sl.kind <= static_cast<std::uint8_t>(FamilyKind::kSet) && sl.key_len <= UINT16_MAX &&
              header_at(sl.block_off, bh) && bh.owner == i + 1 &&
              8 + std::uint64_t{pad8(sl.key_len)} + std::uint64_t{sl.hist_n} * 8 <= bh.size;
    Family* f = ok ? family_at(sl.family_off) : nullptr;
    ok = ok && f != nullptr && static_cast<std::uint8_t>(f->kind) == sl.kind;
    const auto kind = static_cast<FamilyKind>(sl.kind);
    if (ok && (kind == FamilyKind::kSummary || kind == FamilyKind::kHistogram)) {
      ok = sl.spec < specs_->size() &&
           (kind != FamilyKind::kHistogram || (*specs_)[sl.spec].buckets.size() + 1 == sl.hist_n);
    }
    ok = ok && registry_->try_add_series(*f);
    if (!ok) {  // corrupt, a changed config, or over budget: dropped, counted, committed below
      if (st.log(st.offset_of(&sl), sizeof sl)) sl.live = 0;
      free_series_.push_back(i);
      ++stats_.state_series_dropped;
      continue;
    }
    const std::byte* labels = ar + sl.block_off + sizeof bh;
    se.hash = sl.hash;
    se.family = f;
    se.key_off = sl.block_off + static_cast<std::uint32_t>(sizeof bh);
    se.key_len = sl.key_len;
    se.label_count = sl.label_count;
    se.kind = sl.kind;
    se.value = sl.value;
    se.expires_ns = sl.expires_ns;
    se.ext = kNoExt;
    se.flags = kLive | kPublished;
    switch (kind) {
      case FamilyKind::kSummary: {
        se.ext = static_cast<std::uint32_t>(summaries_.size());
        SummaryState& s = summaries_.emplace_back();
        s.count = sl.count;
        s.sum = sl.sum;
        s.spec = sl.spec;
        s.head_start_ns = now_ns;
        s.window.resize((*specs_)[sl.spec].age_buckets);  // quantile windows restart empty
        break;
      }
      case FamilyKind::kHistogram: {
        se.ext = static_cast<std::uint32_t>(histograms_.size());
        HistogramState& h = histograms_.emplace_back();
        h.count = sl.count;
        h.sum = sl.sum;
        h.spec = sl.spec;
        h.counts.resize(sl.hist_n);
        std::memcpy(h.counts.data(), labels + pad8(sl.key_len), std::size_t{sl.hist_n} * 8);
        break;
      }
      case FamilyKind::kSet: {
        se.ext = static_cast<std::uint32_t>(sets_.size());
        SetState& s = sets_.emplace_back();
        s.window_id = now_ns / set_window_ns_;  // the open window's members are not kept
        s.members.assign(16, 0);
        break;
      }
      default: break;
    }
    index_map_.insert(se.hash, i);
    ++live_;
    ++stats_.state_series_restored;
    mark_dirty(i);
  }
  commit_state();
  // Blocks not owned by a live slot (freed, or written by a rolled-back
  // transaction) are free.
  std::uint64_t off = 0;
  BlockHeader bh;
  while (header_at(off, bh)) {
    const bool family = bh.owner == kFamilyOwner;
    const bool owned = bh.owner >= 1 && bh.owner <= high && (series_[bh.owner - 1].flags & kLive) &&
                       st.slots()[bh.owner - 1].block_off == off;
    if (!family && !owned) {
      const std::size_t c = LabelArena::size_class(bh.size);
      if (block_free_.size() <= c) block_free_.resize(c + 1);
      block_free_[c].push_back(static_cast<std::uint32_t>(off));
    }
    off += bh.size;
  }
}

std::size_t Shard::memory_bytes() const noexcept {
  std::size_t n = series_.capacity() * sizeof(Series) + index_map_.memory_bytes() + arena_.memory_bytes() +
                  (dirty_.capacity() + active_.capacity() + free_series_.capacity()) * sizeof(std::uint32_t);
  for (const SummaryState& s : summaries_) {
    n += sizeof s;
    for (const Sketch& k : s.window) n += k.memory_bytes();
  }
  for (const HistogramState& h : histograms_) n += sizeof h + h.counts.capacity() * sizeof(double);
  for (const SetState& st : sets_) n += sizeof st + st.members.capacity() * sizeof(std::uint64_t);
  return n;
}

EngineStats Shard::stats() const noexcept {
  EngineStats s = stats_;
  s.series_live = live_;
  s.state_bytes = memory_bytes();
  return s;
}

}  // namespace ringpipe::processors::detail
