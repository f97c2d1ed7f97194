// Shard, state side: the series kept in a StateStore (processors/STATE.md):
// arena blocks, undo-logged slot writes, commits, the applied seqs that make
// each input record count once, and the restore on open. Aggregation is in
// shard.cpp, flush encoding in shard_flush.cpp.

#include "shard.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "ringpipe/common/large_buffer.hpp"

#include "state_layout.hpp"

namespace ringpipe::processors::detail {

namespace {
constexpr std::uint32_t pad8(std::uint32_t n) noexcept { return (n + 7) & ~7U; }
// Block bytes before the native region: header, labels, classic counts.
constexpr std::uint64_t classic_bytes(const StateSlot& sl) noexcept {
  return sizeof(BlockHeader) + std::uint64_t{pad8(sl.key_len)} + std::uint64_t{sl.hist_n} * 8;
}
// Room a native region gets when its block is made: buckets for a few
// observations, doubled when they no longer fit.
constexpr std::uint64_t kNativeInitialBuckets = 8;

const char* native_region_error_name(NativeRegionError e) noexcept {
  switch (e) {
    case NativeRegionError::kNoRoom:
      return "no room for its header, or on a series that is not a histogram";
    case NativeRegionError::kTooManyBuckets:
      return "more buckets than its block holds";
    case NativeRegionError::kBadSchema:
      return "schema outside -4..8";
    case NativeRegionError::kBadZeroBucket:
      return "zero bucket not finite and >= 0";
    case NativeRegionError::kBadKey:
      return "bucket keys out of order or out of range";
    case NativeRegionError::kBadCount:
      return "a bucket count not finite and >= 0";
  }
  return "unknown";
}

void write_native(std::byte* at, const metric::NativeHistogram& n) noexcept {
  NativeRegion r{};
  r.schema = n.schema();
  r.positive_n = static_cast<std::uint32_t>(n.positive().size());
  r.negative_n = static_cast<std::uint32_t>(n.negative().size());
  r.zero_threshold = n.zero_threshold();
  r.zero_count = n.zero_count();
  std::memcpy(at, &r, sizeof r);
  at += sizeof r;
  for (const auto side : {n.positive(), n.negative()}) {
    for (const auto& [key, count] : side) {
      const NativeBucketRecord b{key, 0, count};
      std::memcpy(at, &b, sizeof b);
      at += sizeof b;
    }
  }
}
}  // namespace

tl::expected<NativeRecord, NativeRegionError> decode_native_region(std::span<const std::byte> room) {
  if (room.size() < sizeof(NativeRegion)) return tl::unexpected(NativeRegionError::kNoRoom);
  NativeRegion r;
  std::memcpy(&r, room.data(), sizeof r);
  if (std::uint64_t{r.positive_n} + r.negative_n > (room.size() - sizeof r) / sizeof(NativeBucketRecord)) {
    return tl::unexpected(NativeRegionError::kTooManyBuckets);
  }
  if (r.schema < metric::kNativeSchemaMin || r.schema > metric::kNativeSchemaMax || r.reserved != 0) {
    return tl::unexpected(NativeRegionError::kBadSchema);
  }
  const auto good_count = [](double c) { return std::isfinite(c) && c >= 0; };
  if (!good_count(r.zero_threshold) || !good_count(r.zero_count)) {
    return tl::unexpected(NativeRegionError::kBadZeroBucket);
  }
  const std::int64_t key_limit = std::int64_t{1100} << std::max(r.schema, 0);
  NativeRecord out;
  out.schema = r.schema;
  out.zero_threshold = r.zero_threshold;
  out.zero_count = r.zero_count;
  const std::byte* p = room.data() + sizeof r;
  auto read_side = [&](std::uint32_t n,
                       std::vector<std::pair<std::int32_t, double>>& side) -> std::optional<NativeRegionError> {
    side.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i, p += sizeof(NativeBucketRecord)) {
      NativeBucketRecord b;
      std::memcpy(&b, p, sizeof b);
      if (b.reserved != 0 || b.key > key_limit || b.key < -key_limit || (!side.empty() && b.key <= side.back().first)) {
        return NativeRegionError::kBadKey;
      }
      if (!good_count(b.count)) return NativeRegionError::kBadCount;
      side.emplace_back(b.key, b.count);
    }
    return std::nullopt;
  };
  if (const auto e = read_side(r.positive_n, out.positive)) return tl::unexpected(*e);
  if (const auto e = read_side(r.negative_n, out.negative)) return tl::unexpected(*e);
  return out;
}

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
  if (f.id < family_off_.size() && family_off_[f.id] != kNoBlock) return family_off_[f.id];
  const std::uint16_t name_len = f.name_len;
  const FamilyTexts& texts = registry_->texts(f);
  // Most families have the default HELP: a plain family's is not copied into
  // every block (~30 bytes a family, which with StatsD names is a series).
  const bool default_help = f.prom_type == 0 && texts.help == default_help_;
  const auto help_len = default_help ? std::uint16_t{0}
                                     : static_cast<std::uint16_t>(std::min<std::size_t>(texts.help.size(), UINT16_MAX));
  const auto unit_len = static_cast<std::uint8_t>(std::min<std::size_t>(texts.unit.size(), UINT8_MAX));
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
  std::memcpy(p + sizeof fb, f.name_at, name_len);
  std::memcpy(p + sizeof fb + name_len, texts.help.data(), help_len);
  if (unit_len != 0) std::memcpy(p + sizeof fb + name_len + help_len, texts.unit.data(), unit_len);
  remember_family_block(f, off);
  return off;
}

void Shard::remember_family_block(const Family& f, std::uint32_t off) {
  if (f.id >= family_off_.size()) {
    common::resize_large(family_off_, std::max<std::size_t>(f.id + 1, family_off_.size() * 2), kNoBlock);
  }
  if (family_off_[f.id] == kNoBlock) family_off_[f.id] = off;  // the first block found keeps it, as before
}

bool Shard::persist_new(std::uint32_t idx, const std::byte* labels) noexcept {
  // The slot's page gets file space before it is touched (a full file system
  // then refuses the series instead of killing the process with SIGBUS).
  if (!store_->reserve_slots(std::uint64_t{idx} + 1)) return false;
  Series& se = series_[idx];
  const std::uint32_t fam = family_block(registry_->at(se.family));
  if (fam == UINT32_MAX) return false;
  if (se.key_len > UINT16_MAX) return false;  // the mapper keeps it at most 60000
  const bool hist = se.kind == static_cast<std::uint8_t>(FamilyKind::kHistogram);
  const std::uint32_t hist_n = hist ? static_cast<std::uint32_t>(histograms_[se.ext].counts.size()) : 0;
  const metric::NativeHistogram* native = hist ? histograms_[se.ext].native.get() : nullptr;
  const std::uint64_t native_bytes =
      native != nullptr ? native_region_bytes(std::max<std::uint64_t>(
                              kNativeInitialBuckets, 2 * (native->positive().size() + native->negative().size())))
                        : 0;
  const std::uint64_t bytes = 8 + std::uint64_t{pad8(se.key_len)} + std::uint64_t{hist_n} * 8 + native_bytes;
  if (bytes > UINT32_MAX / 2) return false;
  const std::uint32_t block = alloc_block(static_cast<std::uint32_t>(bytes), idx + 1);
  if (block == UINT32_MAX) return false;
  std::byte* p = store_->arena() + block + sizeof(BlockHeader);
  if (se.key_len != 0) std::memcpy(p, labels, se.key_len);  // labels may be null when empty
  std::memset(p + pad8(se.key_len), 0, std::size_t{hist_n} * 8);
  if (native != nullptr) write_native(p + pad8(se.key_len) + std::size_t{hist_n} * 8, *native);
  StateSlot& sl = store_->slots()[idx];
  StateControl& ctl = store_->control();
  if (idx >= ctl.slot_high) {
    // A slot at or past the high-water mark is read by no restore until a
    // commit raises the mark past it, and the control block's undo image
    // (logged here, before the mark moves) lowers it again if this
    // transaction rolls back: the slot's old bytes need no undo entry of
    // their own. (At 1M new series that entry was a third of the cost of
    // creating one.)
    if (!store_->log_control()) return false;
    ctl.slot_high = idx + 1;
    mark_tx(se, idx, kTxWhole);
  } else if (!log_whole_slot(idx)) {
    return false;
  }
  sl = StateSlot{};
  sl.hash = se.hash;
  sl.block_off = block;
  sl.family_off = fam;
  sl.key_len = static_cast<std::uint16_t>(se.key_len);
  sl.native_region = native != nullptr ? 1 : 0;
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

void Shard::mark_tx(Series& se, std::uint32_t idx, std::uint8_t bit) noexcept {
  if ((se.flags & (kTxValues | kTxWhole)) == 0) tx_marked_.push_back(idx);
  se.flags |= bit;
}

bool Shard::log_whole_slot(std::uint32_t idx) noexcept {
  Series& se = series_[idx];
  if (se.flags & kTxWhole) return true;
  if (!store_->log(store_->offset_of(&store_->slots()[idx]), sizeof(StateSlot))) return false;
  mark_tx(se, idx, kTxWhole);
  return true;
}

void Shard::persist(std::uint32_t idx) noexcept {
  if (store_ == nullptr) return;
  const Series& se = series_[idx];
  StateSlot& sl = store_->slots()[idx];
  const bool hist = se.kind == static_cast<std::uint8_t>(FamilyKind::kHistogram);
  const bool summary = se.kind == static_cast<std::uint8_t>(FamilyKind::kSummary);
  const metric::NativeHistogram* native = hist ? histograms_[se.ext].native.get() : nullptr;
  if (native != nullptr) {
    // A native histogram that outgrew its block (or a series restored from a
    // file without native regions) moves to a larger block first.
    const std::uint64_t buckets = native->positive().size() + native->negative().size();
    if (native_room(sl) < buckets && !move_block(idx, buckets)) {
      ++stats_.state_full;
      return;
    }
  }
  std::byte* counts = store_->arena() + sl.block_off + sizeof(BlockHeader) + pad8(sl.key_len);
  std::byte* region = counts + std::size_t{sl.hist_n} * 8;
  if ((se.flags & (kTxValues | kTxWhole)) == 0) {
    // Only the values change here: value and expires_ns, plus count and sum
    // of an observer (and a histogram's counts and native region, in its
    // block: the region's header and the buckets it held). A slot whose
    // whole image is logged later in this transaction (freed or moved) is
    // still restored right: rollback runs newest first, so this older
    // image wins.
    static_assert(offsetof(StateSlot, value) == 8 && offsetof(StateSlot, expires_ns) == 16 &&
                  offsetof(StateSlot, count) == 24 && offsetof(StateSlot, sum) == 32);
    const std::uint32_t len = summary || hist ? 32 : 16;
    std::uint64_t native_len = 0;
    if (native != nullptr) {
      NativeRegion r;
      std::memcpy(&r, region, sizeof r);
      native_len =
          native_region_bytes(std::min<std::uint64_t>(std::uint64_t{r.positive_n} + r.negative_n, native_room(sl)));
    }
    if (!store_->log(store_->offset_of(&sl.value), len) ||
        (hist && !store_->log(store_->offset_of(counts), sl.hist_n * 8)) ||
        (native_len != 0 && !store_->log(store_->offset_of(region), static_cast<std::uint32_t>(native_len)))) {
      ++stats_.state_full;
      return;
    }
    mark_tx(series_[idx], idx, kTxValues);
  }
  sl.value = value_of(se);
  sl.expires_ns = expires_of(idx);
  if (summary) {
    sl.count = summaries_[se.ext].count;
    sl.sum = summaries_[se.ext].sum;
  } else if (hist) {
    const HistogramState& h = histograms_[se.ext];
    sl.count = h.count;
    sl.sum = h.sum;
    std::memcpy(counts, h.counts.data(), std::min<std::size_t>(h.counts.size(), sl.hist_n) * 8);
    if (native != nullptr) write_native(region, *native);
  }
}

std::uint64_t Shard::native_room(const StateSlot& sl) const noexcept {
  if (sl.native_region != 1) return 0;
  BlockHeader bh;
  std::memcpy(&bh, store_->arena() + sl.block_off, sizeof bh);
  const std::uint64_t before = classic_bytes(sl) + sizeof(NativeRegion);
  return bh.size < before ? 0 : (bh.size - before) / sizeof(NativeBucketRecord);
}

bool Shard::move_block(std::uint32_t idx, std::uint64_t buckets) noexcept {
  StateSlot& sl = store_->slots()[idx];
  const std::uint64_t classic = classic_bytes(sl);
  const std::uint64_t bytes = classic + native_region_bytes(std::max(kNativeInitialBuckets, 2 * buckets));
  // A block's size is 32-bit and the arena bounded (alloc_block refuses what does not fit).
  if (bytes > UINT32_MAX / 2 || !log_whole_slot(idx)) return false;
  const std::uint32_t block = alloc_block(static_cast<std::uint32_t>(bytes), idx + 1);
  if (block == UINT32_MAX) return false;
  // The new block is no committed slot's until commit; the old one is freed
  // then (a rollback points the slot back at it, unchanged).
  std::byte* ar = store_->arena();
  std::memcpy(ar + block + sizeof(BlockHeader), ar + sl.block_off + sizeof(BlockHeader), classic - sizeof(BlockHeader));
  pending_free_.push_back(sl.block_off);
  sl.block_off = block;
  sl.native_region = 1;
  series_[idx].key_off = block + static_cast<std::uint32_t>(sizeof(BlockHeader));
  return true;
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
  for (const std::uint32_t idx : tx_marked_) series_[idx].flags &= static_cast<std::uint8_t>(~(kTxValues | kTxWhole));
  tx_marked_.clear();
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
      // A plain family without HELP was written with the default one.
      const std::string_view help = rec->prom.type == 0 && rec->help.empty() ? default_help_ : rec->help;
      const FamilyRegistry::Lookup lk = registry_->get_or_create(rec->name, rec->kind, help, rec->prom);
      if (lk.family != nullptr && !lk.conflict) f = lk.family;
    }
    families.emplace(off, f);
    if (f != nullptr) remember_family_block(*f, off);
    return f;
  };
  series_.resize(high);
  std::uint64_t native_refused = 0;
  NativeRegionError native_error{};
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
    bool ok = sl.kind <= static_cast<std::uint8_t>(FamilyKind::kSet) && header_at(sl.block_off, bh) &&
              bh.owner == i + 1 && classic_bytes(sl) <= bh.size;
    // A native region is checked whole before the series is kept: a
    // malformed one drops the series (counted, logged below), as a
    // malformed family block does.
    std::optional<NativeRecord> native;
    if (ok && sl.native_region != 0) {
      tl::expected<NativeRecord, NativeRegionError> rec = tl::unexpected(NativeRegionError::kNoRoom);
      if (sl.native_region == 1 && sl.kind == static_cast<std::uint8_t>(FamilyKind::kHistogram)) {
        rec = decode_native_region({ar + sl.block_off + classic_bytes(sl), bh.size - classic_bytes(sl)});
      }
      if (rec) {
        native = std::move(*rec);
      } else {
        ok = false;
        ++native_refused;
        native_error = rec.error();
      }
    }
    Family* f = ok ? family_at(sl.family_off) : nullptr;
    ok = ok && f != nullptr && static_cast<std::uint8_t>(f->kind) == sl.kind;
    const auto kind = static_cast<FamilyKind>(sl.kind);
    // A histogram of a Prometheus family is set from native samples: its
    // spec is prom_native_spec() (last), wherever a changed mapping moved it.
    const bool prom_native = ok && kind == FamilyKind::kHistogram && f->prom_type != 0;
    const std::uint32_t spec = prom_native ? static_cast<std::uint32_t>(specs_->size() - 1) : sl.spec;
    if (ok && (kind == FamilyKind::kSummary || kind == FamilyKind::kHistogram)) {
      ok = spec < specs_->size() && (*specs_)[spec].prom_native == prom_native &&
           (kind != FamilyKind::kHistogram || (*specs_)[spec].buckets.size() + 1 == sl.hist_n);
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
    se.family = f->id;
    se.key_off = sl.block_off + static_cast<std::uint32_t>(sizeof bh);
    se.key_len = sl.key_len;
    se.label_count = sl.label_count;
    se.kind = sl.kind;
    if (kind == FamilyKind::kCounter || kind == FamilyKind::kGauge) se.value = sl.value;
    set_expires(i, sl.expires_ns);
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
        h.spec = spec;
        h.counts.resize(sl.hist_n);
        std::memcpy(h.counts.data(), labels + pad8(sl.key_len), std::size_t{sl.hist_n} * 8);
        reset_native(h);
        // Native buckets as kept; a file without them (version 1, or a
        // mapping that had no native_histogram_bucket_factor) starts them
        // empty, and a mapping that no longer asks for them drops them.
        if (h.native && native) {
          h.native->assign(native->schema, native->zero_threshold, native->zero_count, std::move(native->positive),
                           std::move(native->negative));
        }
        break;
      }
      case FamilyKind::kSet: {
        se.ext = static_cast<std::uint32_t>(sets_.size());
        SetState& s = sets_.emplace_back();
        s.window_id = now_ns / set_window_ns_;  // the open window's members are not kept
        s.value = sl.value;
        s.completed = static_cast<std::uint32_t>(std::min<double>(sl.value, UINT32_MAX));
        s.members.assign(16, 0);
        // Its window rolls as a live set's does: without a member by the
        // window's end, it falls to 0 instead of publishing the count it
        // came back with for good.
        se.flags |= kActive;
        active_.push_back(i);
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
  if (native_refused != 0) {
    spdlog::error("processor: state {}: {} histogram series dropped: malformed native histogram region ({})", st.path(),
                  native_refused, native_region_error_name(native_error));
  }
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
