#include "shard.hpp"

#include <algorithm>
#include <cstring>

#include "ringpipe/common/large_buffer.hpp"

namespace ringpipe::processors::detail {

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

Shard::Shard(std::uint16_t index, std::uint16_t count, FamilyRegistry& registry, std::shared_ptr<const SpecTable> specs,
             const EngineOptions& options, std::uint64_t instance_id, StateStore* store, std::int64_t now_ns)
    : index_(index),
      count_(count),
      registry_(&registry),
      specs_(std::move(specs)),
      set_window_ns_(std::max<std::int64_t>(1, options.set_window.count())),
      max_set_members_(std::max<std::uint32_t>(1, options.max_set_members)),
      max_record_bytes_(options.max_record_bytes),
      instance_id_(instance_id),
      default_help_(options.default_help),
      store_(store) {
  if (store_ != nullptr) restore(now_ns);
}

void Shard::mark_dirty(std::uint32_t idx) noexcept {
  Series& se = series_[idx];
  if (se.flags & kDirty) return;
  se.flags |= kDirty;
  common::push_back_large(dirty_, idx);  // at 1M series 4 MiB: huge pages, not 1k faults
}

std::uint32_t Shard::create_series(const MappedSample& m, const std::byte* labels, std::int64_t now_ns) noexcept {
  if (!registry_->try_add_series(*m.family)) {
    registry_->count_cardinality_drop(*m.family);
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
  }
  Series& se = series_[idx];
  se = Series{};
  se.hash = m.series_hash;
  se.family = m.family->id;
  // With a store the key lives once, in the series' store block (persist_new sets key_off).
  se.key_off = store_ == nullptr ? arena_.store(labels, m.labels_len) : 0;
  se.key_len = m.labels_len;
  se.label_count = m.label_count;
  se.kind = static_cast<std::uint8_t>(m.family->kind);
  se.flags = kLive;
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
      for (TargetedQuantiles& k : s.window) k.reset();
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
      reset_native(h);
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
      st.value = 0;
      st.window_id = now_ns / set_window_ns_;
      st.size = 0;
      st.completed = 0;
      if (st.members.size() != 16) st.members.assign(16, 0);
      std::fill(st.members.begin(), st.members.end(), 0);
      se.ext = e;
      break;
    }
    default:
      se.flags |= kPublished;
      break;
  }
  if (m.family->kind == FamilyKind::kSummary) se.flags |= kPublished;
  if (m.family->kind == FamilyKind::kHistogram) se.flags |= kPublished;
  if (store_ != nullptr && !persist_new(idx, labels)) {
    ++stats_.state_full;
    release_ext(se);
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

void Shard::release_ext(const Series& se) noexcept {
  switch (static_cast<FamilyKind>(se.kind)) {
    case FamilyKind::kSummary:
      free_summaries_.push_back(se.ext);
      break;
    case FamilyKind::kHistogram:
      free_histograms_.push_back(se.ext);
      break;
    case FamilyKind::kSet:
      free_sets_.push_back(se.ext);
      break;
    default:
      break;
  }
}

void Shard::set_expires(std::uint32_t idx, std::int64_t at_ns) noexcept {
  if (idx >= expires_.size()) {
    if (at_ns == 0) return;
    common::resize_large(expires_, std::max<std::size_t>(idx + 1, series_.size()), std::int64_t{0});
  }
  expires_[idx] = at_ns;
}

void Shard::free_series(std::uint32_t idx) noexcept {
  Series& se = series_[idx];
  persist_free(idx);
  index_map_.erase(se.hash, idx);
  if (store_ == nullptr) arena_.release(se.key_off, se.key_len);
  release_ext(se);
  registry_->remove_series(registry_->at(se.family));
  se.flags = 0;
  set_expires(idx, 0);
  free_series_.push_back(idx);
  --live_;
  ++stats_.series_expired;
}

double Shard::value_of(const Series& se) const noexcept {
  switch (static_cast<FamilyKind>(se.kind)) {
    case FamilyKind::kCounter:
    case FamilyKind::kGauge:
      return se.value;
    case FamilyKind::kSet:
      return sets_[se.ext].value;
    default:
      return 0;
  }
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
  // The window just closed is the last completed one (0 if it was not the
  // previous window, i.e. a whole window passed without members).
  st.completed = window_id == st.window_id + 1 ? st.size : 0;
  st.value = static_cast<double>(st.completed);  // the new open window has no members yet
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
    changed |= !s.window[s.head].empty();
    s.window[s.head].reset();  // the oldest stream starts again as the newest
    s.head = (s.head + 1) % static_cast<std::uint32_t>(n);
  }
  s.head_start_ns += steps * sp.bucket_ns;
  return changed;
}

bool Shard::set_native(HistogramState& h, const std::byte* values) {
  if (!h.native) return false;
  const auto at = [values](std::size_t i) {
    double d;
    std::memcpy(&d, values + i * sizeof d, sizeof d);
    return d;
  };
  const auto positive_n = static_cast<std::size_t>(at(3));
  const auto negative_n = static_cast<std::size_t>(at(4));
  std::vector<metric::NativeHistogram::Bucket> positive(positive_n);
  std::vector<metric::NativeHistogram::Bucket> negative(negative_n);
  std::size_t i = metric::kNativeHeadValues;
  for (auto* side : {&positive, &negative}) {
    for (auto& [key, count] : *side) {
      key = static_cast<std::int32_t>(at(i));
      count = at(i + 1);
      i += 2;
    }
  }
  h.native->assign(static_cast<std::int32_t>(at(0)), at(1), at(2), std::move(positive), std::move(negative));
  h.count = at(i);
  h.sum = at(i + 1);
  // No classic bucket but +Inf, which holds every observation.
  std::fill(h.counts.begin(), h.counts.end(), 0.0);
  if (!h.counts.empty()) h.counts.back() = h.count;
  return true;
}

void Shard::apply(const MappedSample& m, const std::byte* label_base, std::int64_t now_ns) noexcept {
  const std::byte* labels = label_base + m.labels_off;
  std::uint32_t idx = index_map_.find(m.series_hash, [&](std::uint32_t v) {
    const Series& se = series_[v];
    // An empty key is never stored in the arena (whose data() may be null).
    return se.hash == m.series_hash && se.family == m.family->id && se.key_len == m.labels_len &&
           (m.labels_len == 0 || std::memcmp(key_of(se), labels, m.labels_len) == 0);
  });
  if (idx == FlatIndex::kNone) {
    idx = create_series(m, labels, now_ns);
    if (idx == FlatIndex::kNone) return;
  }
  Series& se = series_[idx];
  se.flags &= static_cast<std::uint8_t>(~kExpiring);
  set_expires(idx, m.ttl_ns > 0 ? now_ns + m.ttl_ns : 0);
  switch (m.op) {
    case Op::kAdd:
      // The mapper sends each op to its kind's series only; a series' value
      // shares its room with another kind's side-state index.
      if (se.kind > static_cast<std::uint8_t>(FamilyKind::kGauge)) return;
      se.value += m.value;
      break;
    case Op::kSet:
      if (se.kind > static_cast<std::uint8_t>(FamilyKind::kGauge)) return;  // as kAdd
      se.value = m.value;
      break;
    case Op::kObserve:
      if (se.kind == static_cast<std::uint8_t>(FamilyKind::kSummary)) {
        SummaryState& s = summaries_[se.ext];
        rotate_summary(s, now_ns);
        s.count += m.weight;
        s.sum += m.value * m.weight;
        for (TargetedQuantiles& k : s.window) k.insert(m.value, m.weight, (*specs_)[s.spec].quantiles);
        if (!(se.flags & kActive)) {
          se.flags |= kActive;
          active_.push_back(idx);
        }
      } else if (se.kind == static_cast<std::uint8_t>(FamilyKind::kHistogram)) {
        HistogramState& h = histograms_[se.ext];
        const std::vector<double>& b = (*specs_)[h.spec].buckets;
        // le semantics: the first bucket whose upper bound is >= value.
        const auto it = std::lower_bound(b.begin(), b.end(), m.value);
        h.counts[static_cast<std::size_t>(it - b.begin())] += m.weight;
        if (h.native) h.native->observe(m.value, m.weight);
        h.count += m.weight;
        h.sum += m.value * m.weight;
      } else {
        return;  // as kAdd
      }
      break;
    case Op::kSetNative: {
      if (se.kind != static_cast<std::uint8_t>(FamilyKind::kHistogram)) return;  // the mapper never sends it elsewhere
      HistogramState& h = histograms_[se.ext];
      if (!set_native(h, label_base + m.labels_off + m.labels_len)) return;
      break;
    }
    case Op::kSetMember: {
      if (se.kind != static_cast<std::uint8_t>(FamilyKind::kSet)) return;  // as kAdd
      SetState& st = sets_[se.ext];
      if (roll_set(se, st, now_ns / set_window_ns_)) mark_dirty(idx);
      const std::uint32_t before = st.size;
      add_member(st, m.member);
      if (st.size != before && static_cast<double>(st.size) > st.value) {
        st.value = static_cast<double>(st.size);  // the open window outgrew the last completed one
        se.flags |= kPublished;
        mark_dirty(idx);
      } else if (!(se.flags & kPublished)) {
        se.flags |= kPublished;
        mark_dirty(idx);
      }
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

void Shard::apply_batch(std::span<const MappedSample> ms, const std::byte* label_base, std::int64_t now_ns) noexcept {
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

std::size_t Shard::memory_bytes() const noexcept {
  std::size_t n = series_.capacity() * sizeof(Series) + index_map_.memory_bytes() + arena_.memory_bytes() +
                  (dirty_.capacity() + active_.capacity() + free_series_.capacity() + tx_marked_.capacity() +
                   family_off_.capacity()) *
                      sizeof(std::uint32_t);
  for (const SummaryState& s : summaries_) {
    n += sizeof s;
    for (const TargetedQuantiles& k : s.window) n += k.memory_bytes();
  }
  for (const HistogramState& h : histograms_) {
    n += sizeof h + h.counts.capacity() * sizeof(double);
    if (h.native) n += sizeof(metric::NativeHistogram) + h.native->memory_bytes();
  }
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
