#include "ringpipe/processors/processor.hpp"

#include <blockingconcurrentqueue.h>
#include <concurrentqueue.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "engine_parts.hpp"
#include "family_registry.hpp"
#include "relay.hpp"
#include "ringpipe/common/crash_journal.hpp"
#include "ringpipe/common/log.hpp"
#include "ringpipe/common/run_dir.hpp"
#include "ringpipe/common/test_hooks.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/sample/sample_batch.hpp"
#include "series_mapper.hpp"
#include "shard.hpp"
#include "state_store.hpp"

namespace ringpipe::processors {
namespace {

using detail::MappedSample;

// Latency budgets of the input readers (Reader::set_wait_budget): while
// samples keep arriving, the reader looks at the ring once per kReadBudget
// and hands each shard one batch of whatever came meanwhile, instead of
// being woken (and waking a shard) per record; the gate, which only frees
// ring space behind the shards, looks half as often. After kIdleAfter
// without a record both sleep on the ring's futex again.
constexpr std::chrono::microseconds kReadBudget{1000};
constexpr std::chrono::microseconds kGateBudget{2000};
constexpr std::chrono::milliseconds kIdleAfter{50};

// Samples for one shard, with the label bytes they point into. Travels
// reader -> shard through the shard's queue and back through the reader's pool.
struct ShardBatch {
  std::vector<MappedSample> samples;
  std::vector<std::byte> labels;
  std::vector<detail::RecordSegment> segs;
  std::uint32_t input = 0;
  std::int64_t now_ns = 0;
  moodycamel::ConcurrentQueue<ShardBatch*>* home = nullptr;
};

// Writes metric-batch records into the shard's own lane of the output ring.
// Waiting (up to the timeout per record) unless told to defer: then a full
// ring refuses at once, and since what it refused is owed, not dropped, it is
// not counted as a dropped record.
class RingSink final : public RecordSink {
 public:
  RingSink(ring::Producer& p, std::size_t max_bytes, std::chrono::nanoseconds timeout)
      : p_(p), max_(max_bytes), timeout_(timeout) {}
  void set_defer(bool defer) noexcept { defer_ = defer; }
  std::span<std::byte> begin_record(std::size_t min_bytes) noexcept override {
    if (min_bytes > max_) return {};
    ring::WriteStatus st = ring::WriteStatus::kOk;
    std::span<std::byte> s = p_.claim(max_, defer_ ? std::chrono::nanoseconds(0) : timeout_, &st);
    if (s.empty() && !(defer_ && st == ring::WriteStatus::kFull)) {
      p_.count_dropped(1);
      ++refused_;
    }
    return s;
  }
  void commit_record(std::size_t used_bytes) noexcept override {
    if (used_bytes != 0) p_.finish(metric::kMetricBatchRecord, used_bytes);
  }
  void end_flush() noexcept override { p_.publish(); }
  [[nodiscard]] std::uint64_t refused() const noexcept { return refused_; }

 private:
  ring::Producer& p_;
  std::size_t max_;
  std::chrono::nanoseconds timeout_;
  std::uint64_t refused_ = 0;
  bool defer_ = false;
};

// Counters a thread publishes for stats() readers.
struct StatsSlot {
  mutable std::mutex mu;
  EngineStats stats;
  void publish(const EngineStats& s) {
    std::lock_guard lock(mu);
    stats = s;
  }
  EngineStats get() const {
    std::lock_guard lock(mu);
    return stats;
  }
};

}  // namespace

struct Processor::Impl {
  ProcessorOptions options;
  std::unique_ptr<detail::Relay> relay;  // set for a relay: nothing below is used
  std::unique_ptr<detail::FamilyRegistry> registry;
  std::shared_ptr<const detail::SpecTable> specs;

  struct Input {
    explicit Input(ring::Ring r) : ring(std::move(r)) {}
    ring::Ring ring;
    std::optional<ring::Reader> reader;
    std::unique_ptr<detail::SeriesMapper> mapper;
    moodycamel::ConcurrentQueue<ShardBatch*> pool;
    std::vector<std::unique_ptr<ShardBatch>> owned;
    StatsSlot stats;
    std::thread thread;
    // Crash-safe state: the gate reader trails `reader` and only passes
    // records every shard has committed.
    std::uint32_t index = 0;
    std::optional<ring::Reader> gate;
    std::thread gate_thread;
    std::unique_ptr<std::atomic<std::uint64_t>[]> dispatched;  // per lane: last seq handed to shards
    std::unique_ptr<std::atomic<std::uint64_t>[]> enqueued;    // per shard: batches sent
    std::unique_ptr<std::atomic<std::uint64_t>[]> committed;   // per shard: batches committed
    // Records that kill the processor: the one being read is journaled, so
    // after a death the next run knows it, reads carefully (one record at a
    // time, each applied by the shards before the next) and skips a record
    // that was being read at quarantine_after_crashes deaths in a row.
    std::optional<CrashJournal> journal;
    bool careful = false;
    std::uint64_t careful_bytes = 0;  // backlog at start: careful until read (or caught up)
    std::atomic<std::uint64_t> quarantined{0};
  };
  struct ShardCtx {
    std::unique_ptr<detail::Shard> shard;
    std::optional<ring::Producer> producer;
    moodycamel::BlockingConcurrentQueue<ShardBatch*> queue;
    StatsSlot stats;
    std::thread thread;
  };
  std::optional<ring::Ring> output;
  std::vector<std::unique_ptr<Input>> inputs;
  std::vector<std::unique_ptr<ShardCtx>> shards;

  std::atomic<bool> readers_stop{false};
  std::atomic<bool> shards_stop{false};
  std::atomic<bool> gate_final{false};
  std::vector<std::unique_ptr<detail::StateStore>> stores;
  EngineStats state_stats;
  std::atomic<std::uint64_t> snapshot_generation{0};
  bool started = false;
  bool stopped = false;
  RateLimiter warn{std::chrono::seconds(10)};

  // One input and one shard: the reader thread applies each batch itself and
  // flushes the shard, so no batch crosses threads and no shard thread wakes.
  [[nodiscard]] bool inline_shard() const noexcept { return shards.size() == 1 && inputs.size() == 1; }
  class Flusher;
  void reader_loop(Input& in);
  void gate_loop(Input& in);
  void apply_direct(Input& in, const ring::RecordView& v);
  bool skip_quarantined(Input& in, const ring::RecordView& v);
  void wait_applied(Input& in);
  void shard_loop(std::uint32_t index);
  ShardBatch* take_batch(Input& in);
};

// Flushes one shard every flush_interval into its lane of the output ring:
// a snapshot at the first flush, every snapshot_every_flushes and when an
// exporter asks for a resync. Used by the thread that applies the shard's
// batches (its own, or the reader's with inline_shard()).
class Processor::Impl::Flusher {
 public:
  Flusher(Impl& m, std::uint32_t index)
      : m_(m),
        index_(index),
        ctx_(*m.shards[index]),
        sink_(*ctx_.producer, m.options.engine.max_record_bytes, m.options.output_timeout),
        interval_(std::chrono::nanoseconds(m.options.flush_interval).count()),
        next_flush_(monotonic_ns() + interval_),
        seen_generation_(m.snapshot_generation.load(std::memory_order_acquire)),
        resync_path_(m.options.output + std::string(metric::kResyncSuffix)) {}

  // When maybe_flush() has work next: the next flush, or sooner a drain of
  // what the last one owes.
  [[nodiscard]] std::int64_t next_flush() const noexcept {
    return ctx_.shard->owed() != 0 ? std::min(next_flush_, next_drain_) : next_flush_;
  }
  void maybe_flush() {
    const std::int64_t now = monotonic_ns();
    if (now >= next_flush_) {
      flush();
    } else if (ctx_.shard->owed() != 0 && now >= next_drain_) {
      sink_.set_defer(true);
      if (!ctx_.shard->drain(realtime_ns(), sink_)) next_drain_ = now + kDrainRetryNs;
      ctx_.stats.publish(ctx_.shard->stats());
    }
  }
  // A flush every interval. Its changes never wait for output space: what the
  // ring has no room for is owed and drained as room frees up, between the
  // input's polls, so a burst of changes larger than the output ring (a
  // million series each flush) does not stop the input while an exporter
  // works through it. Snapshots (whole, between their markers) and the last
  // flush (`final`, when stopping) wait for space as before.
  void flush(bool final = false) {
    const std::int64_t now = monotonic_ns();
    if (index_ == 0 && ::access(resync_path_.c_str(), F_OK) == 0) {
      ::unlink(resync_path_.c_str());
      m_.snapshot_generation.fetch_add(1, std::memory_order_acq_rel);
    }
    const std::uint64_t gen = m_.snapshot_generation.load(std::memory_order_acquire);
    ++flushes_;
    const std::uint32_t every = m_.options.engine.snapshot_every_flushes;
    const bool snapshot = snapshot_due_ || gen != seen_generation_ || (every != 0 && flushes_ % every == 0);
    seen_generation_ = gen;
    const bool overdue = ctx_.shard->owed() != 0;  // the last flush's changes not all out after an interval
    if (overdue) ctx_.shard->count_stall();
    const std::uint64_t stalls = ctx_.shard->stats().flush_stalls;
    const bool defer = !snapshot && !final;
    sink_.set_defer(defer);
    ctx_.shard->flush(now, realtime_ns(), sink_, snapshot, defer);
    const EngineStats st = ctx_.shard->stats();
    const bool failed = st.flush_stalls != stalls;
    snapshot_due_ = snapshot && failed;
    if ((overdue || failed) && m_.warn.allow()) {
      spdlog::warn(
          "processor shard {}: output ring {} full; {} ({} similar suppressed)", index_, m_.options.output,
          overdue ? "the last flush's changes were not all written within a flush interval; they follow with this one"
                  : "flush deferred",
          m_.warn.take_suppressed());
    }
    ctx_.stats.publish(st);
    next_flush_ = now + interval_;
    next_drain_ = now + kDrainRetryNs;
  }

 private:
  Impl& m_;
  std::uint32_t index_;
  ShardCtx& ctx_;
  RingSink sink_;
  std::int64_t interval_;
  // A drain looks for room this often: about the time an exporter takes to
  // apply one record, and the input reader's own nap (kReadBudget).
  static constexpr std::int64_t kDrainRetryNs = 1'000'000;
  std::int64_t next_flush_;
  std::int64_t next_drain_ = 0;
  std::uint64_t flushes_ = 0;
  std::uint64_t seen_generation_;
  bool snapshot_due_ = true;  // the first flush is a snapshot
  std::string resync_path_;
};

ShardBatch* Processor::Impl::take_batch(Input& in) {
  ShardBatch* b = nullptr;
  while (!in.pool.try_dequeue(b)) {
    if (in.owned.size() < options.max_batches_in_flight) {
      in.owned.push_back(std::make_unique<ShardBatch>());
      b = in.owned.back().get();
      b->home = &in.pool;
      b->samples.reserve(options.batch_samples);
      b->labels.reserve(options.batch_samples * 32);
      break;
    }
    std::this_thread::yield();  // every batch is queued: wait for the shards (backpressure)
  }
  b->samples.clear();
  b->labels.clear();
  b->segs.clear();
  b->input = in.index;
  return b;
}

void Processor::Impl::reader_loop(Input& in) {
  const std::uint32_t n = static_cast<std::uint32_t>(shards.size());
  const std::uint32_t lanes = in.ring.lanes();
  std::vector<ShardBatch*> pending(n, nullptr);
  std::vector<std::uint64_t> last_seq(lanes, 0);
  std::vector<std::uint8_t> seen(lanes, 0);
  std::uint64_t foreign = 0;
  std::uint64_t untrusted_seen = 0;
  std::int64_t next_stats_ns = 0;
  std::optional<Flusher> flusher;
  if (inline_shard()) flusher.emplace(*this, 0);
  auto send = [&](std::uint32_t s) {
    ShardBatch* b = pending[s];
    if (b == nullptr || b->samples.empty()) return;
    if (flusher) {  // applied and committed here, before the gate can see the records dispatched
      shards[s]->shard->apply_segments(b->samples, b->segs, b->labels.data(), b->now_ns);
      b->samples.clear();
      b->labels.clear();
      b->segs.clear();
      in.enqueued[s].fetch_add(1, std::memory_order_release);
      in.committed[s].fetch_add(1, std::memory_order_release);
      return;
    }
    shards[s]->queue.enqueue(b);  // may allocate a block: never loses a batch
    pending[s] = nullptr;
    in.enqueued[s].fetch_add(1, std::memory_order_release);  // pairs with the gate's acquire
  };
  CrashJournal* journal = in.journal ? &*in.journal : nullptr;
  std::uint64_t careful_read = 0;
  constexpr std::size_t kHintAhead = 16;  // samples; a power of two, at least 4
  std::array<sample::SampleView, kHintAhead> views{};
  std::array<std::uint64_t, kHintAhead> hints{};
  in.reader->set_wait_budget(kReadBudget, kIdleAfter);
  while (!readers_stop.load(std::memory_order_acquire)) {
    std::chrono::nanoseconds wait = std::chrono::milliseconds(50);
    if (flusher)
      wait = std::clamp(std::chrono::nanoseconds(flusher->next_flush() - monotonic_ns()), std::chrono::nanoseconds(0),
                        wait);
    in.reader->wait(wait);
    const std::int64_t now = monotonic_ns();
    auto on_record = [&](const ring::RecordView& v) {
      if (v.lane < lanes) {
        last_seq[v.lane] = v.seq;
        seen[v.lane] = 1;
      }
      if (journal != nullptr) {
        if (skip_quarantined(in, v)) return;
        journal->begin(v.lane, v.seq, v.position);
        if (in.careful) careful_read += ring::detail::record_bytes(v.payload.size());
      }
      if (v.type != sample::kSampleBatchRecord) {
        ++foreign;
        return;
      }
      // Samples are decoded kHintAhead ahead of the one mapped, into a small
      // ring, so that the mapper's name lookups can be fetched ahead (with
      // 100k names its index and entries are far out of cache, and each
      // sample waited on them in turn).
      sample::BatchReader br(v.payload);
      const bool hint = in.mapper->names_past_cache();  // else the hints cost more than they save
      const auto take = [&](const sample::SampleView* s, const std::uint64_t* name_hint) {
        RINGPIPE_TEST_CRASH_POINT("processor", s->name);
        // Map into a scratch position of the target shard's batch; the shard
        // is known only after the labels (and so the hash) are built.
        ShardBatch* probe = pending[0] ? pending[0] : (pending[0] = take_batch(in));
        const std::size_t mark = probe->labels.size();
        MappedSample ms;
        if (!in.mapper->map(*s, probe->labels, ms, name_hint)) return;
        const std::uint32_t target = detail::shard_of(ms.series_hash, n);
        if (target != 0) {
          ShardBatch*& b = pending[target];
          if (b == nullptr) b = take_batch(in);
          const std::size_t at = b->labels.size();
          b->labels.insert(b->labels.end(), probe->labels.begin() + static_cast<std::ptrdiff_t>(mark),
                           probe->labels.end());
          probe->labels.resize(mark);
          ms.labels_off = static_cast<std::uint32_t>(at);
        }
        ShardBatch* b = pending[target];
        b->now_ns = now;
        b->samples.push_back(ms);
      };
      if (!hint) {
        while (auto s = br.next()) take(&*s, nullptr);
      } else {
        std::size_t decoded = 0;
        bool more = true;
        const auto decode_next = [&] {
          if (!more) return;
          const auto next = br.next();
          if (!next) {
            more = false;
            return;
          }
          views[decoded % kHintAhead] = *next;
          hints[decoded % kHintAhead] = in.mapper->prefetch_index(*next);
          ++decoded;
        };
        while (more && decoded < kHintAhead) decode_next();
        for (std::size_t i = 0; i < decoded; ++i) {
          const sample::SampleView view = views[i % kHintAhead];
          const std::uint64_t name_hint = hints[i % kHintAhead];
          decode_next();  // sample i + kHintAhead, into the slot just copied out
          if (i + kHintAhead / 2 < decoded) in.mapper->prefetch_entry(hints[(i + kHintAhead / 2) % kHintAhead]);
          if (i + kHintAhead / 4 < decoded) in.mapper->prefetch_name(hints[(i + kHintAhead / 4) % kHintAhead]);
          take(&view, &name_hint);
        }
      }
      if (br.error() != sample::DecodeError::kNone) ++foreign;
      // A record's samples for one shard travel in one batch, so a shard
      // commits whole records (its applied seq never splits one).
      for (std::uint32_t s = 0; s < n; ++s) {
        ShardBatch* b = pending[s];
        if (b == nullptr) continue;
        const auto end = static_cast<std::uint32_t>(b->samples.size());
        if (end > (b->segs.empty() ? 0 : b->segs.back().end)) {
          b->segs.push_back(detail::RecordSegment{in.index, v.lane, v.seq, end});
        }
        if (end >= options.batch_samples) send(s);
      }
    };
    const std::size_t got = in.reader->poll(on_record, in.careful ? 1 : SIZE_MAX);
    for (std::uint32_t s = 0; s < n; ++s) send(s);
    for (std::uint32_t l = 0; l < lanes; ++l) {
      if (!seen[l]) continue;
      seen[l] = 0;
      in.dispatched[l].store(last_seq[l], std::memory_order_release);  // pairs with the gate's acquire
    }
    if (in.careful && got != 0) wait_applied(in);  // a death from here on is this record's
    if (journal != nullptr) journal->end();
    if (in.careful && (got == 0 || careful_read >= in.careful_bytes)) {
      in.careful = false;
      spdlog::info("processor: input {}: read carefully past the backlog of the previous run; back to batches",
                   in.ring.path());
    }
    if (flusher) flusher->maybe_flush();
    if (now >= next_stats_ns) {
      EngineStats st = in.mapper->stats();
      st.decode_errors += foreign;
      st.quarantined_records = in.quarantined.load(std::memory_order_relaxed);
      in.stats.publish(st);
      next_stats_ns = now + 100'000'000;
      const std::uint64_t untrusted = st.dropped_name_too_long + st.labels_dropped_reserved +
                                      st.labels_dropped_type_owned + st.labels_dropped_duplicate +
                                      st.labels_dropped_invalid;
      if (untrusted != untrusted_seen && warn.allow()) {
        spdlog::warn(
            "processor: input names and labels Prometheus would refuse: {} samples dropped (name over {} bytes); "
            "labels removed, samples kept: {} reserved (__*), {} type_owned (le, quantile), {} duplicate, {} invalid "
            "(totals; {} similar suppressed)",
            st.dropped_name_too_long, options.engine.max_name_bytes, st.labels_dropped_reserved,
            st.labels_dropped_type_owned, st.labels_dropped_duplicate, st.labels_dropped_invalid,
            warn.take_suppressed());
        untrusted_seen = untrusted;
      }
    }
  }
  for (std::uint32_t s = 0; s < n; ++s) {
    send(s);
    if (pending[s] && pending[s]->samples.empty()) {
      in.pool.enqueue(pending[s]);
      pending[s] = nullptr;
    }
  }
  if (flusher) flusher->flush(true);  // as a shard thread does when it stops
  EngineStats st = in.mapper->stats();
  st.decode_errors += foreign;
  st.quarantined_records = in.quarantined.load(std::memory_order_relaxed);
  in.stats.publish(st);
}

// A quarantined record is taken from the ring (the gate passes it as usual)
// but never decoded; its first skip ever is counted and logged.
bool Processor::Impl::skip_quarantined(Input& in, const ring::RecordView& v) {
  if (!in.journal || !in.journal->is_quarantined(v.lane, v.seq, v.position)) return false;
  if (in.journal->first_skip()) {
    in.quarantined.fetch_add(1, std::memory_order_relaxed);
    spdlog::error(
        "processor: quarantined record of ring {} lane {} seq {} position {} ({} bytes, type {}): the processor died "
        "reading it {} times in a row; skipped (processor_quarantined_records_total)",
        in.ring.path(), v.lane, v.seq, v.position, v.payload.size(), v.type, in.journal->strikes_to_quarantine());
  }
  return true;
}

// Careful reading: returns once every batch sent so far is applied by its shard.
void Processor::Impl::wait_applied(Input& in) {
  const std::size_t n = shards.size();
  for (std::size_t k = 0; k < n; ++k) {
    const std::uint64_t e = in.enqueued[k].load(std::memory_order_acquire);
    while (in.committed[k].load(std::memory_order_acquire) < e)
      std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

// Trails the reader: a record passes the gate (and so may be overwritten by
// producers) only when every batch sent up to it has been committed by its shard.
void Processor::Impl::gate_loop(Input& in) {
  const std::uint32_t n = static_cast<std::uint32_t>(shards.size());
  const std::uint32_t lanes = in.ring.lanes();
  std::vector<std::uint64_t> covered(lanes, 0);
  std::vector<std::uint64_t> d(lanes, 0);
  std::vector<std::uint64_t> e(n, 0);
  bool final_pass = false;
  bool ahead = false;  // the gate reached a record the reader has not handed to the shards yet
  in.gate->set_wait_budget(kGateBudget, kIdleAfter);
  // false leaves the record unread (the gate's cursor stays before it).
  auto on_record = [&](const ring::RecordView& v) -> bool {
    if (v.lane >= lanes) return true;
    for (;;) {
      if (v.seq <= covered[v.lane]) return true;
      for (std::uint32_t l = 0; l < lanes; ++l) d[l] = in.dispatched[l].load(std::memory_order_acquire);
      if (d[v.lane] < v.seq) {
        if (final_pass) {  // the reader stopped before it: apply it here
          apply_direct(in, v);
          return true;
        }
        ahead = true;  // look again after a budget, when the reader has taken it
        return false;
      }
      for (std::uint32_t k = 0; k < n; ++k) e[k] = in.enqueued[k].load(std::memory_order_acquire);
      for (std::uint32_t k = 0; k < n; ++k) {
        while (in.committed[k].load(std::memory_order_acquire) < e[k]) {
          std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
      }
      covered = d;
    }
  };
  for (;;) {
    final_pass = gate_final.load(std::memory_order_acquire);
    if (!final_pass) {
      if (ahead) {
        std::this_thread::sleep_for(kGateBudget);  // the record is there: wait() would not sleep
      } else {
        in.gate->wait(std::chrono::milliseconds(50));
      }
    }
    ahead = false;
    while (in.gate->poll_while(on_record) != 0 && !final_pass && !ahead) {
    }
    if (final_pass) break;
  }
}

// Stop path only (reader and shard threads are joined): applies a record the
// reader never took, straight into the shards, so the gate may pass it.
void Processor::Impl::apply_direct(Input& in, const ring::RecordView& v) {
  if (skip_quarantined(in, v)) return;
  if (v.type != sample::kSampleBatchRecord) return;
  const std::uint32_t n = static_cast<std::uint32_t>(shards.size());
  std::vector<ShardBatch> b(n);
  sample::BatchReader br(v.payload);
  while (auto s = br.next()) {
    std::vector<std::byte> labels;
    MappedSample ms;
    if (!in.mapper->map(*s, labels, ms)) continue;
    ShardBatch& t = b[detail::shard_of(ms.series_hash, n)];
    ms.labels_off = static_cast<std::uint32_t>(t.labels.size());
    t.labels.insert(t.labels.end(), labels.begin(), labels.end());
    t.samples.push_back(ms);
  }
  const std::int64_t now = monotonic_ns();
  for (std::uint32_t s = 0; s < n; ++s) {
    if (b[s].samples.empty()) continue;
    const detail::RecordSegment seg{in.index, v.lane, v.seq, static_cast<std::uint32_t>(b[s].samples.size())};
    shards[s]->shard->apply_segments(b[s].samples, {&seg, 1}, b[s].labels.data(), now);
  }
}

void Processor::Impl::shard_loop(std::uint32_t index) {
  ShardCtx& ctx = *shards[index];
  Flusher flusher(*this, index);
  ShardBatch* items[64];
  for (;;) {
    const bool stopping = shards_stop.load(std::memory_order_acquire);
    const std::int64_t wait_ns = std::max<std::int64_t>(0, flusher.next_flush() - monotonic_ns());
    const std::size_t got =
        stopping ? ctx.queue.try_dequeue_bulk(items, 64) : ctx.queue.wait_dequeue_bulk_timed(items, 64, wait_ns / 1000);
    for (std::size_t i = 0; i < got; ++i) {
      ShardBatch* b = items[i];
      ctx.shard->apply_segments(b->samples, b->segs, b->labels.data(), b->now_ns);
      const std::uint32_t input = b->input;
      b->home->enqueue(b);
      // Pairs with the gate's acquire: the batch's transaction is committed.
      inputs[input]->committed[index].fetch_add(1, std::memory_order_release);
    }
    if (stopping && got == 0) break;
    flusher.maybe_flush();
  }
  flusher.flush(true);
}

Processor::Processor(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Processor::~Processor() { stop(); }

Result<std::unique_ptr<Processor>> Processor::create(ProcessorOptions options) {
  if (auto st = detail::validate(options.engine); !st) return tl::unexpected(st.error());
  if (options.inputs.empty()) return invalid("processor: no input ring");
  if (options.output.empty()) return invalid("processor: no output ring");
  if (options.batch_samples == 0 || options.max_batches_in_flight < 2) {
    return invalid("processor options: batch_samples must be > 0 and max_batches_in_flight >= 2");
  }
  auto impl = std::make_unique<Impl>();
  if (options.relay) {
    if (!options.state_dir.empty()) return invalid("processor: a relay keeps no state (state_dir must be empty)");
    auto relay = detail::Relay::create(options);
    if (!relay) return tl::unexpected(relay.error());
    impl->relay = std::move(*relay);
    impl->options = std::move(options);
    return std::unique_ptr<Processor>(new Processor(std::move(impl)));
  }
  EngineOptions& eo = options.engine;
  if (eo.instance_id == 0) eo.instance_id = detail::random_instance_id();

  auto out = ring::Ring::open(options.output);
  if (!out) return invalid("processor: " + options.output + ": " + out.error().message());
  if (out->lanes() < eo.shards) {
    return invalid("processor: " + options.output + ": " + std::to_string(out->lanes()) +
                   " lanes, need one per shard (" + std::to_string(eo.shards) + ")");
  }
  impl->output.emplace(std::move(*out));
  eo.max_record_bytes = std::min<std::size_t>(eo.max_record_bytes, impl->output->max_record_bytes());
  if (eo.max_record_bytes < 4096) return invalid("processor: " + options.output + ": records under 4 KiB");

  auto matcher = Matcher::create(eo.mapping);
  if (!matcher) return tl::unexpected(matcher.error());
  impl->registry = std::make_unique<detail::FamilyRegistry>(eo.max_families, eo.max_series, eo.max_series_per_metric);
  impl->specs = detail::build_specs(*matcher);

  if (!options.state_dir.empty()) {
    if (options.inputs.size() > detail::kStateMaxInputs) return invalid("processor: state: at most 8 inputs");
    // Made 0700 and checked (ours, closed to others, no symlink): the state
    // files are hundreds of MB written by what may be a root process.
    if (auto dir = RunDir::open_or_create(options.state_dir); !dir) {
      return tl::unexpected(Error{dir.error().code, "processor: state: " + dir.error().context});
    }
    detail::StateGeometry g;
    g.shard_count = eo.shards;
    g.slot_capacity = std::min<std::uint64_t>(eo.max_series, std::uint64_t{4} << 20);
    g.arena_bytes = std::min<std::uint64_t>(g.slot_capacity * 256, (std::uint64_t{1} << 32) - 4096);
    g.undo_bytes = std::max<std::uint64_t>(options.state_undo_bytes, 1u << 20) & ~std::uint64_t{7};
    std::uint64_t restored_id = 0;
    for (std::uint32_t i = 0; i < eo.shards; ++i) {
      g.shard = i;
      const std::string path = options.state_dir + "/shard-" + std::to_string(i) + ".state";
      bool restored = false;
      std::string rejected;
      auto st = detail::StateStore::open(path, g, &restored, &rejected);
      if (!st) return invalid("processor: " + st.error().message());
      if (!rejected.empty()) {
        // Refusing to start would only make the supervisor restart us into the same refusal.
        spdlog::error("processor: state {}: refused ({}); moved aside to {}.rejected, shard {} starts EMPTY", path,
                      rejected, path, i);
        ++impl->state_stats.state_rejected;
      }
      if (restored && restored_id == 0) restored_id = (*st)->control().instance_id;
      impl->stores.push_back(std::move(*st));
    }
    // Exporters see the same instance: restored counters are not a reset.
    if (restored_id != 0) eo.instance_id = restored_id;
    for (auto& st : impl->stores) {
      if (st->control().instance_id != eo.instance_id && st->log_control()) {
        st->control().instance_id = eo.instance_id;
        st->commit();
      }
    }
  }

  const std::int64_t start_ns = monotonic_ns();
  for (std::uint32_t i = 0; i < eo.shards; ++i) {
    auto ctx = std::make_unique<Impl::ShardCtx>();
    ctx->shard = std::make_unique<detail::Shard>(static_cast<std::uint16_t>(i), static_cast<std::uint16_t>(eo.shards),
                                                 *impl->registry, impl->specs, eo, eo.instance_id,
                                                 impl->stores.empty() ? nullptr : impl->stores[i].get(), start_ns);
    auto p = ring::Producer::attach(*impl->output);
    if (!p) return invalid("processor: " + options.output + ": " + p.error().message());
    ctx->producer.emplace(std::move(*p));
    impl->shards.push_back(std::move(ctx));
  }
  for (const std::string& path : options.inputs) {
    auto r = ring::Ring::open(path);
    if (!r) return invalid("processor: " + path + ": " + r.error().message());
    auto in = std::make_unique<Impl::Input>(std::move(*r));
    in->index = static_cast<std::uint32_t>(impl->inputs.size());
    const std::uint32_t lanes = in->ring.lanes();
    in->dispatched = std::make_unique<std::atomic<std::uint64_t>[]>(lanes);
    in->enqueued = std::make_unique<std::atomic<std::uint64_t>[]>(eo.shards);
    in->committed = std::make_unique<std::atomic<std::uint64_t>[]>(eo.shards);
    ring::ReaderOptions ro;
    if (!impl->stores.empty()) {
      // The gate's cursor is the durable one; the reader restarts where the
      // gate is (everything after it is still in the ring, held back by the
      // gate) and the shards skip what they committed before.
      const std::string gate_name = options.reader_name + ".c";
      auto gate = ring::Reader::attach(in->ring, gate_name);
      if (!gate) return invalid("processor: " + path + ": " + gate.error().message());
      in->gate.emplace(std::move(*gate));
      (void)in->ring.remove_reader(options.reader_name);  // fails if absent; a live one fails attach below
      ro.start = ring::StartAt::kReader;
      ro.from = gate_name;
      for (auto& sh : impl->shards) sh->shard->sync_input(in->index, in->ring.creation_id());
    }
    auto reader = ring::Reader::attach(in->ring, options.reader_name, ro);
    if (!reader) return invalid("processor: " + path + ": " + reader.error().message());
    in->reader.emplace(std::move(*reader));
    auto journal = CrashJournal::open(CrashJournal::path_for(path, options.reader_name), in->ring.creation_id(),
                                      options.quarantine_after_crashes);
    if (!journal) {
      spdlog::warn("processor: {} (a record that kills the processor is not quarantined)", journal.error().message());
    } else {
      in->journal.emplace(std::move(*journal));
      const CrashJournal& j = *in->journal;
      in->careful = j.previous_crashed();
      if (in->careful) in->careful_bytes = in->reader->stats().lag_bytes;
      if (j.died_on()) {
        spdlog::warn(
            "processor: input {}: the previous run died reading record lane {} seq {} position {} ({} death(s) in a "
            "row on it{}); reading one record at a time",
            path, j.died_on()->lane, j.died_on()->seq, j.died_on()->position, j.strikes(),
            j.quarantined() == j.died_on() ? ": quarantined" : "");
      } else if (in->careful) {
        spdlog::warn("processor: input {}: the previous run died; reading one record at a time", path);
      }
    }
    auto m = Matcher::create(eo.mapping);
    if (!m) return tl::unexpected(m.error());
    in->mapper = std::make_unique<detail::SeriesMapper>(std::move(*m), *impl->registry, eo);
    impl->inputs.push_back(std::move(in));
  }
  impl->options = std::move(options);
  return std::unique_ptr<Processor>(new Processor(std::move(impl)));
}

Status Processor::start() {
  Impl& m = *impl_;
  if (m.relay) return m.relay->start();
  if (m.started) return invalid("processor: already started");
  m.started = true;
  if (!m.inline_shard()) {
    for (std::uint32_t i = 0; i < m.shards.size(); ++i) m.shards[i]->thread = std::thread([&m, i] { m.shard_loop(i); });
  }
  for (auto& in : m.inputs) {
    Impl::Input* p = in.get();
    in->thread = std::thread([&m, p] { m.reader_loop(*p); });
    if (in->gate) in->gate_thread = std::thread([&m, p] { m.gate_loop(*p); });
  }
  return {};
}

void Processor::stop() noexcept {
  Impl& m = *impl_;
  if (m.relay) {
    m.relay->stop();
    return;
  }
  if (!m.started) {
    for (auto& in : m.inputs)
      if (in->journal) in->journal->close();  // never read: nothing died
  }
  if (!m.started || m.stopped) return;
  m.stopped = true;
  m.readers_stop.store(true, std::memory_order_release);
  for (auto& in : m.inputs) in->thread.join();
  m.shards_stop.store(true, std::memory_order_release);
  for (auto& s : m.shards)
    if (s->thread.joinable()) s->thread.join();
  m.gate_final.store(true, std::memory_order_release);
  for (auto& in : m.inputs) {
    if (in->gate_thread.joinable()) in->gate_thread.join();
    if (in->journal) in->journal->close();
  }
}

// A relay keeps no series to snapshot: nothing to do.
void Processor::request_snapshot() noexcept { impl_->snapshot_generation.fetch_add(1, std::memory_order_acq_rel); }

EngineStats Processor::stats() const {
  if (impl_->relay) return impl_->relay->stats();
  EngineStats s = impl_->state_stats;
  for (const auto& in : impl_->inputs) s += in->stats.get();
  for (const auto& sh : impl_->shards) s += sh->stats.get();
  return s;
}

}  // namespace ringpipe::processors
