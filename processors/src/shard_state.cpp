// Shard, state side: the series kept in a StateStore (processors/STATE.md):
// arena blocks, undo-logged slot writes, commits, the applied seqs that make
// each input record count once, and the restore on open. Aggregation is in
// shard.cpp, flush encoding in shard_flush.cpp.

#include "shard.hpp"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "state_layout.hpp"

namespace ringpipe::processors::detail {

namespace {
constexpr std::uint32_t pad8(std::uint32_t n) noexcept { return (n + 7) & ~7U; }
}  // namespace

tl::expected<FamilyRecord, FamilyBlockError> decode_family_block(std::span<const std::byte> arena,
                                                                 std::uint64_t off) noexcept {
  // Sizes are compared with the room left after off, never as off + n (a
  // crafted offset or size could wrap that sum back inside the arena).
  if (off % 8 != 0 || off > arena.size() || arena.size() - off < sizeof(FamilyBlock)) {
    return tl::unexpected(FamilyBlockError::kOutsideArena);
  }
  FamilyBlock fb;
  std::memcpy(&fb, arena.data() + off, sizeof fb);
  if (fb.header.size % 8 != 0 || fb.header.size < sizeof fb || fb.header.size > arena.size() - off) {
    return tl::unexpected(FamilyBlockError::kBadBlock);
  }
  if (fb.header.owner != kFamilyOwner) return tl::unexpected(FamilyBlockError::kNotAFamily);
  if (sizeof fb + std::uint64_t{fb.name_len} + fb.help_len + fb.unit_len > fb.header.size) {
    return tl::unexpected(FamilyBlockError::kLengthsOverrun);
  }
  if (fb.kind > static_cast<std::uint8_t>(FamilyKind::kSet) || fb.prom_type > sample::kMaxFamilyType ||
      fb.suffix_len > fb.name_len || (fb.prom_type == 0 && (fb.suffix_len != 0 || fb.unit_len != 0))) {
    return tl::unexpected(FamilyBlockError::kBadKind);
  }
  if (fb.name_len == 0) return tl::unexpected(FamilyBlockError::kEmptyName);
  const char* text = reinterpret_cast<const char*>(arena.data() + off + sizeof fb);
  return FamilyRecord{
      static_cast<FamilyKind>(fb.kind), std::string_view(text, fb.name_len),
      std::string_view(text + fb.name_len, fb.help_len),
      PromFamily{fb.prom_type, fb.suffix_len, std::string_view(text + fb.name_len + fb.help_len, fb.unit_len)}};
}

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
  const auto unit_len = static_cast<std::uint8_t>(std::min<std::size_t>(f.unit.size(), UINT8_MAX));
  const std::uint32_t off =
      alloc_block(static_cast<std::uint32_t>(sizeof(FamilyBlock)) + name_len + help_len + unit_len, kFamilyOwner);
  if (off == UINT32_MAX) return off;
  std::byte* p = store_->arena() + off;
  FamilyBlock fb{};
  std::memcpy(&fb.header, p, sizeof fb.header);  // as alloc_block wrote it
  fb.kind = static_cast<std::uint8_t>(f.kind);
  fb.name_len = name_len;
  fb.help_len = help_len;
  fb.prom_type = f.prom_type;
  fb.suffix_len = f.prom_suffix_len;
  fb.unit_len = unit_len;
  std::memcpy(p, &fb, sizeof fb);
  std::memcpy(p + sizeof fb, f.name.data(), name_len);
  std::memcpy(p + sizeof fb + name_len, f.help.data(), help_len);
  if (unit_len != 0) std::memcpy(p + sizeof fb + name_len + help_len, f.unit.data(), unit_len);
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
    Family* f = nullptr;
    // A refused block drops the series that name it (counted by the caller).
    if (const auto rec = decode_family_block({ar, static_cast<std::size_t>(used)}, off)) {
      const FamilyRegistry::Lookup lk = registry_->get_or_create(rec->name, rec->kind, rec->help, rec->prom);
      if (lk.family != nullptr && !lk.conflict) f = lk.family;
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
        reset_native(h);  // native buckets are not in the store: they restart empty (STATE.md)
        break;
      }
      case FamilyKind::kSet: {
        se.ext = static_cast<std::uint32_t>(sets_.size());
        SetState& s = sets_.emplace_back();
        s.window_id = now_ns / set_window_ns_;  // the open window's members are not kept
        s.completed = static_cast<std::uint32_t>(std::min<double>(se.value, UINT32_MAX));
        s.members.assign(16, 0);
        break;
      }
      default:
        break;
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

}  // namespace ringpipe::processors::detail
