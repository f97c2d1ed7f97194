// Shard, flush side: what moves with time at a flush (expiry, summary
// windows, set windows) and the encoding of changed series into metric-batch
// records. Aggregation is in shard.cpp, the crash-safe state in shard_state.cpp.

#include "shard.hpp"

#include <algorithm>
#include <limits>
#include <optional>

namespace ringpipe::processors::detail {

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
    if (!open(sizeof(metric::MetricBatchHeader) + metric::kMarkerEntrySize) || !writer_->append_marker(k, id))
      return fail();
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

bool Shard::publishable(const Series& se) const noexcept { return (se.flags & kPublished) != 0; }

void Shard::encode(const Series& se, EntryKind kind, SeriesEntry& e) noexcept {
  const Family& f = registry_->at(se.family);
  e.kind = kind;
  e.key = se.hash;
  registry_->describe(f, e);
  e.label_bytes = std::span<const std::byte>(key_of(se), se.key_len);
  e.label_count = se.label_count;
  values_.clear();
  if (kind == EntryKind::kSeries) {
    switch (f.kind) {
      case FamilyKind::kCounter:
      case FamilyKind::kGauge:
      case FamilyKind::kSet:
        values_.push_back(value_of(se));
        break;
      case FamilyKind::kSummary: {
        SummaryState& s = summaries_[se.ext];
        values_.push_back(s.count);
        values_.push_back(s.sum);
        const std::vector<QuantileTarget>& targets = (*specs_)[s.spec].quantiles;
        for (const QuantileTarget& q : targets) {
          values_.push_back(q.quantile);
          values_.push_back(s.window[s.head].query(q.quantile, targets));
        }
        break;
      }
      case FamilyKind::kHistogram: {
        const HistogramState& h = histograms_[se.ext];
        if (f.prom_type != 0) {
          // Set from Prometheus native samples: the last one, as a relay
          // writes it (the mapper refused one whose entry would not fit).
          if (h.native && append_native(*h.native, 0)) e.flags |= metric::kEntryNative;
          values_.push_back(h.count);
          values_.push_back(h.sum);
          break;
        }
        const std::vector<double>& b = (*specs_)[h.spec].buckets;
        if (h.native && append_native(*h.native, b.size())) e.flags = metric::kEntryNative;
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

void Shard::reset_native(HistogramState& h) {
  const ObserverSpec& sp = (*specs_)[h.spec];
  if (!sp.native) {
    h.native.reset();
  } else if (h.native && h.native->schema() == sp.native_schema) {
    h.native->clear();
  } else {
    h.native = std::make_unique<metric::NativeHistogram>(sp.native_schema, sp.native_max_buckets);
  }
}

bool Shard::append_native(const metric::NativeHistogram& n, std::size_t classic_buckets) noexcept {
  const std::size_t pairs = n.positive().size() + n.negative().size();
  // The entry's values are counted in 16 bits: the classic ones come first.
  if (metric::kNativeHeadValues + 2 * pairs + 2 * classic_buckets + 4 > UINT16_MAX) return false;
  values_.push_back(n.schema());
  values_.push_back(n.zero_threshold());
  values_.push_back(n.zero_count());
  values_.push_back(static_cast<double>(n.positive().size()));
  values_.push_back(static_cast<double>(n.negative().size()));
  for (const auto& [key, count] : n.positive()) {
    values_.push_back(key);
    values_.push_back(count);
  }
  for (const auto& [key, count] : n.negative()) {
    values_.push_back(key);
    values_.push_back(count);
  }
  return true;
}

void Shard::flush(std::int64_t now_ns, std::int64_t wall_ns, RecordSink& sink, bool snapshot, bool defer) noexcept {
  ++flush_seq_;
  ++stats_.flushes;
  // Expiry runs on the processor's clock, whether anyone scrapes or not.
  for (std::uint32_t i = 0; i < expires_.size(); ++i) {
    if (expires_[i] == 0 || now_ns < expires_[i]) continue;
    Series& se = series_[i];
    if ((se.flags & kLive) && !(se.flags & kExpiring)) {
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
      still_active =
          std::any_of(s.window.begin(), s.window.end(), [](const TargetedQuantiles& k) { return !k.empty(); });
    } else {
      SetState& st = sets_[se.ext];
      if (roll_set(se, st, window_id)) {
        mark_dirty(idx);
        persist(idx);
      }
      still_active = st.size > 0 || st.value != 0;
    }
    if (still_active) {
      active_[keep++] = idx;
    } else {
      se.flags &= static_cast<std::uint8_t>(~kActive);
    }
  }
  active_.resize(keep);

  Emitter em(sink, origin(wall_ns), max_record_bytes_);
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
      for (std::size_t i = dirty_head_; i < dirty_.size(); ++i) {
        const std::uint32_t idx = dirty_[i];
        Series& se = series_[idx];
        se.flags &= static_cast<std::uint8_t>(~kDirty);
        if ((se.flags & kLive) && (se.flags & kExpiring)) free_series(idx);
      }
      dirty_.clear();
      dirty_head_ = 0;
      owed_ = 0;
    }
  } else {
    owed_ = write_dirty(em, dirty_.size());
    if (owed_ != 0 && !defer) {
      ++stats_.flush_stalls;
      owed_ = 0;  // left dirty for the next flush, not for drain()
    }
  }
  end_flush(em, sink);
}

bool Shard::drain(std::int64_t wall_ns, RecordSink& sink) noexcept {
  if (owed_ == 0) return true;
  Emitter em(sink, origin(wall_ns), max_record_bytes_);
  owed_ = write_dirty(em, owed_);
  end_flush(em, sink);  // commits: the expired series it wrote are freed
  return owed_ == 0;
}

void Shard::end_flush(const Emitter& em, RecordSink& sink) noexcept {
  stats_.records_written += em.records();
  stats_.entries_written += em.entries();
  commit_state();
  sink.end_flush();
}

std::size_t Shard::write_dirty(Emitter& em, std::size_t limit) noexcept {
  SeriesEntry e;
  limit = std::min(limit, dirty_.size() - dirty_head_);
  std::size_t done = 0;
  for (; done < limit; ++done) {
    const std::uint32_t idx = dirty_[dirty_head_ + done];
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
  // The written ones leave from the front by a head index: a drain that
  // writes a few records of a million owed changes moves none of the rest.
  dirty_head_ += done;
  if (dirty_head_ == dirty_.size()) {
    dirty_.clear();
    dirty_head_ = 0;
  } else if (dirty_head_ >= dirty_.size() / 2) {
    dirty_.erase(dirty_.begin(), dirty_.begin() + static_cast<std::ptrdiff_t>(dirty_head_));
    dirty_head_ = 0;
  }
  return limit - done;
}

BatchOrigin Shard::origin(std::int64_t wall_ns) const noexcept {
  BatchOrigin o;
  o.shard = index_;
  o.shard_count = count_;
  o.instance_id = instance_id_;
  o.flush_seq = flush_seq_;
  o.flush_ns = wall_ns;
  return o;
}

}  // namespace ringpipe::processors::detail
