#include "ringpipe/processors/processor.hpp"

#include <blockingconcurrentqueue.h>
#include <concurrentqueue.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "engine_parts.hpp"
#include "family_registry.hpp"
#include "ringpipe/common/log.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/sample/sample_batch.hpp"
#include "series_mapper.hpp"
#include "shard.hpp"

namespace ringpipe::processors {
namespace {

using detail::MappedSample;

// Samples for one shard, with the label bytes they point into. Travels
// reader -> shard through the shard's queue and back through the reader's pool.
struct ShardBatch {
  std::vector<MappedSample> samples;
  std::vector<std::byte> labels;
  std::int64_t now_ns = 0;
  moodycamel::ConcurrentQueue<ShardBatch*>* home = nullptr;
};

// Writes metric-batch records into the shard's own lane of the output ring.
class RingSink final : public RecordSink {
 public:
  RingSink(ring::Producer& p, std::size_t max_bytes, std::chrono::nanoseconds timeout)
      : p_(p), max_(max_bytes), timeout_(timeout) {}
  std::span<std::byte> begin_record(std::size_t min_bytes) noexcept override {
    if (min_bytes > max_) return {};
    ring::WriteStatus st = ring::WriteStatus::kOk;
    std::span<std::byte> s = p_.claim(max_, timeout_, &st);
    if (s.empty()) {
      p_.count_dropped(1);
      ++refused_;
    }
    return s;
  }
  void commit_record(std::size_t used_bytes) noexcept override {
    if (used_bytes != 0) p_.finish(kMetricBatchRecord, used_bytes);
  }
  void end_flush() noexcept override { p_.publish(); }
  [[nodiscard]] std::uint64_t refused() const noexcept { return refused_; }

 private:
  ring::Producer& p_;
  std::size_t max_;
  std::chrono::nanoseconds timeout_;
  std::uint64_t refused_ = 0;
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
  std::atomic<std::uint64_t> snapshot_generation{0};
  bool started = false;
  bool stopped = false;
  RateLimiter warn{std::chrono::seconds(10)};

  void reader_loop(Input& in);
  void shard_loop(std::uint32_t index);
  ShardBatch* take_batch(Input& in);
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
  return b;
}

void Processor::Impl::reader_loop(Input& in) {
  const std::uint32_t n = static_cast<std::uint32_t>(shards.size());
  std::vector<ShardBatch*> pending(n, nullptr);
  std::uint64_t foreign = 0;
  std::int64_t next_stats_ns = 0;
  auto send = [&](std::uint32_t s) {
    if (pending[s] == nullptr || pending[s]->samples.empty()) return;
    shards[s]->queue.enqueue(pending[s]);  // may allocate a block: never loses a batch
    pending[s] = nullptr;
  };
  while (!readers_stop.load(std::memory_order_acquire)) {
    in.reader->wait(std::chrono::milliseconds(50));
    const std::int64_t now = monotonic_ns();
    in.reader->poll([&](const ring::RecordView& v) {
      if (v.type != sample::kSampleBatchRecord) {
        ++foreign;
        return;
      }
      sample::BatchReader br(v.payload);
      while (auto s = br.next()) {
        // Map into a scratch position of the target shard's batch; the shard
        // is known only after the labels (and so the hash) are built.
        ShardBatch* probe = pending[0] ? pending[0] : (pending[0] = take_batch(in));
        const std::size_t mark = probe->labels.size();
        MappedSample ms;
        if (!in.mapper->map(*s, probe->labels, ms)) continue;
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
        if (b->samples.size() >= options.batch_samples) send(target);
      }
      if (br.error() != sample::DecodeError::kNone) ++foreign;
    });
    for (std::uint32_t s = 0; s < n; ++s) send(s);
    if (now >= next_stats_ns) {
      EngineStats st = in.mapper->stats();
      st.decode_errors += foreign;
      in.stats.publish(st);
      next_stats_ns = now + 100'000'000;
    }
  }
  for (std::uint32_t s = 0; s < n; ++s) {
    if (pending[s] && pending[s]->samples.empty()) {
      in.pool.enqueue(pending[s]);
      pending[s] = nullptr;
    }
    send(s);
  }
  EngineStats st = in.mapper->stats();
  st.decode_errors += foreign;
  in.stats.publish(st);
}

void Processor::Impl::shard_loop(std::uint32_t index) {
  ShardCtx& ctx = *shards[index];
  RingSink sink(*ctx.producer, options.engine.max_record_bytes, options.output_timeout);
  const std::int64_t interval = std::chrono::nanoseconds(options.flush_interval).count();
  std::int64_t next_flush = monotonic_ns() + interval;
  std::uint64_t flushes = 0;
  std::uint64_t seen_generation = snapshot_generation.load(std::memory_order_acquire);
  bool snapshot_due = true;  // the first flush is a snapshot
  ShardBatch* items[64];
  const std::string resync_path = options.output + ".resync";

  auto do_flush = [&] {
    const std::int64_t now = monotonic_ns();
    if (index == 0 && ::access(resync_path.c_str(), F_OK) == 0) {
      ::unlink(resync_path.c_str());
      snapshot_generation.fetch_add(1, std::memory_order_acq_rel);
    }
    const std::uint64_t gen = snapshot_generation.load(std::memory_order_acquire);
    ++flushes;
    const std::uint32_t every = options.engine.snapshot_every_flushes;
    const bool snapshot = snapshot_due || gen != seen_generation || (every != 0 && flushes % every == 0);
    seen_generation = gen;
    const std::uint64_t stalls = ctx.shard->stats().flush_stalls;
    ctx.shard->flush(now, realtime_ns(), sink, snapshot);
    const EngineStats st = ctx.shard->stats();
    snapshot_due = snapshot && st.flush_stalls != stalls;
    if (st.flush_stalls != stalls && warn.allow()) {
      spdlog::warn("processor shard {}: output ring {} full; flush deferred ({} similar suppressed)", index,
                   options.output, warn.take_suppressed());
    }
    ctx.stats.publish(st);
    next_flush = now + interval;
  };

  for (;;) {
    const bool stopping = shards_stop.load(std::memory_order_acquire);
    const std::int64_t wait_ns = std::max<std::int64_t>(0, next_flush - monotonic_ns());
    const std::size_t got = stopping ? ctx.queue.try_dequeue_bulk(items, 64)
                                     : ctx.queue.wait_dequeue_bulk_timed(items, 64, wait_ns / 1000);
    for (std::size_t i = 0; i < got; ++i) {
      ShardBatch* b = items[i];
      ctx.shard->apply_batch(b->samples, b->labels.data(), b->now_ns);
      b->home->enqueue(b);
    }
    if (stopping && got == 0) break;
    if (monotonic_ns() >= next_flush) do_flush();
  }
  do_flush();
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

  for (std::uint32_t i = 0; i < eo.shards; ++i) {
    auto ctx = std::make_unique<Impl::ShardCtx>();
    ctx->shard = std::make_unique<detail::Shard>(static_cast<std::uint16_t>(i), static_cast<std::uint16_t>(eo.shards),
                                                 *impl->registry, impl->specs, eo, eo.instance_id);
    auto p = ring::Producer::attach(*impl->output);
    if (!p) return invalid("processor: " + options.output + ": " + p.error().message());
    ctx->producer.emplace(std::move(*p));
    impl->shards.push_back(std::move(ctx));
  }
  for (const std::string& path : options.inputs) {
    auto r = ring::Ring::open(path);
    if (!r) return invalid("processor: " + path + ": " + r.error().message());
    auto in = std::make_unique<Impl::Input>(std::move(*r));
    auto reader = ring::Reader::attach(in->ring, options.reader_name);
    if (!reader) return invalid("processor: " + path + ": " + reader.error().message());
    in->reader.emplace(std::move(*reader));
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
  if (m.started) return invalid("processor: already started");
  m.started = true;
  for (std::uint32_t i = 0; i < m.shards.size(); ++i) m.shards[i]->thread = std::thread([&m, i] { m.shard_loop(i); });
  for (auto& in : m.inputs) {
    Impl::Input* p = in.get();
    in->thread = std::thread([&m, p] { m.reader_loop(*p); });
  }
  return {};
}

void Processor::stop() noexcept {
  Impl& m = *impl_;
  if (!m.started || m.stopped) return;
  m.stopped = true;
  m.readers_stop.store(true, std::memory_order_release);
  for (auto& in : m.inputs) in->thread.join();
  m.shards_stop.store(true, std::memory_order_release);
  for (auto& s : m.shards) s->thread.join();
}

void Processor::request_snapshot() noexcept { impl_->snapshot_generation.fetch_add(1, std::memory_order_acq_rel); }

EngineStats Processor::stats() const {
  EngineStats s;
  for (const auto& in : impl_->inputs) s += in->stats.get();
  for (const auto& sh : impl_->shards) s += sh->stats.get();
  return s;
}

}  // namespace ringpipe::processors
