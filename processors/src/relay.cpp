#include "relay.hpp"

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine_parts.hpp"
#include "family_registry.hpp"
#include "ringpipe/common/crash_journal.hpp"
#include "ringpipe/common/log.hpp"
#include "ringpipe/metric/metric_record.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/sample/sample_batch.hpp"
#include "series_mapper.hpp"

namespace ringpipe::processors::detail {

struct Relay::Impl {
  struct Input {
    explicit Input(ring::Ring r) : ring(std::move(r)) {}
    ring::Ring ring;
    std::optional<ring::Reader> reader;
    std::optional<ring::Producer> producer;  // this input's lane of the output ring
    std::unique_ptr<SeriesMapper> mapper;
    std::optional<CrashJournal> journal;
    std::uint16_t index = 0;
    std::thread thread;
    // A record whose entries did not all fit the output: its first `sample`
    // samples are published, the rest wait for the next poll.
    struct Resume {
      std::uint32_t lane = 0;
      std::uint64_t seq = 0;
      std::uint32_t sample = 0;
      bool set = false;
    } resume;
    std::uint64_t flush_seq = 0;
    std::vector<std::byte> labels;
    std::vector<double> native;  // a native histogram sample's values (metric/FORMAT.md)
    EngineStats local;           // the thread's own; copied into `published` under mu
    mutable std::mutex mu;
    EngineStats published;
    std::atomic<std::uint64_t> quarantined{0};
  };

  ProcessorOptions options;
  std::unique_ptr<FamilyRegistry> registry;
  std::optional<ring::Ring> output;
  std::vector<std::unique_ptr<Input>> inputs;
  std::uint64_t instance_id = 0;
  std::atomic<bool> stop{false};
  bool started = false;
  bool stopped = false;
  RateLimiter warn{std::chrono::seconds(10)};

  void loop(Input& in);
  bool relay_record(Input& in, const ring::RecordView& v);
  void publish_stats(Input& in);
};

namespace {

// The entry of one relayed sample, as Shard::encode writes a series, plus its
// time. `e` points at `ms.value`, `labels` and the family's strings.
void encode(const FamilyRegistry& registry, const MappedSample& ms, const std::byte* labels, std::int64_t ts,
            metric::SeriesEntry& e) {
  e.kind = metric::EntryKind::kSeries;
  e.key = ms.series_hash;
  registry.describe(*ms.family, e);
  e.label_bytes = std::span<const std::byte>(labels + ms.labels_off, ms.labels_len);
  e.label_count = ms.label_count;
  e.values = std::span<const double>(&ms.value, 1);
  e.timestamp_ns = ts;
}

}  // namespace

bool Relay::Impl::relay_record(Input& in, const ring::RecordView& v) {
  if (in.journal && in.journal->is_quarantined(v.lane, v.seq, v.position)) {
    if (in.journal->first_skip()) {
      in.quarantined.fetch_add(1, std::memory_order_relaxed);
      spdlog::error(
          "processor: quarantined record of ring {} lane {} seq {} position {}: the relay died reading it {} times "
          "in a row; skipped (processor_quarantined_records_total)",
          in.ring.path(), v.lane, v.seq, v.position, in.journal->strikes_to_quarantine());
    }
    return true;
  }
  if (in.journal) in.journal->begin(v.lane, v.seq, v.position);
  if (v.type != sample::kSampleBatchRecord) {
    ++in.local.decode_errors;
    return true;
  }
  const bool resuming = in.resume.set && in.resume.lane == v.lane && in.resume.seq == v.seq;
  const std::uint32_t skip = resuming ? in.resume.sample : 0;
  in.resume.set = false;
  const std::size_t max_bytes = options.engine.max_record_bytes;
  ring::Producer& out = *in.producer;
  std::optional<metric::MetricBatchWriter> writer;
  std::span<std::byte> buf;
  auto close = [&] {
    if (!writer) return;
    const bool any = !writer->empty();
    const std::size_t used = writer->finish();
    out.finish(metric::kMetricBatchRecord, any ? used : 0);
    if (any) ++in.local.records_written;
    writer.reset();
  };
  auto open = [&]() -> bool {
    buf = out.claim(max_bytes, options.output_timeout);
    if (buf.empty()) return false;
    metric::BatchOrigin origin;
    origin.shard = in.index;
    origin.shard_count = static_cast<std::uint16_t>(inputs.size());
    origin.instance_id = instance_id;
    origin.flush_seq = ++in.flush_seq;
    origin.flush_ns = realtime_ns();
    writer.emplace(buf, origin);
    return true;
  };

  sample::BatchReader br(v.payload);
  const std::int64_t received = br.header().received_ns;
  std::uint32_t index = 0;
  metric::SeriesEntry e;
  while (auto s = br.next()) {
    const std::uint32_t i = index++;
    if (i < skip) continue;  // published before the output filled up
    const bool native = s->kind == sample::Kind::kNativeHistogram;
    if (s->kind != sample::Kind::kGauge && !native) {
      ++in.local.samples;  // the mapper counts the others
      ++in.local.dropped_not_relayable;
      continue;
    }
    in.labels.clear();
    MappedSample ms;
    if (!in.mapper->map(*s, in.labels, ms)) continue;
    encode(*registry, ms, in.labels.data(), s->timestamp_ns != 0 ? s->timestamp_ns : received, e);
    if (native) {
      // Its family must still be the histogram or gaugehistogram it came in
      // (a rule that renames a sample makes it a plain gauge's).
      const std::uint8_t pt = ms.family->prom_type;
      if (pt != static_cast<std::uint8_t>(sample::FamilyType::kHistogram) &&
          pt != static_cast<std::uint8_t>(sample::FamilyType::kGaugeHistogram)) {
        ++in.local.dropped_native_renamed;
        continue;
      }
      if (!native_values(s->native(), in.native)) {
        ++in.local.dropped_native_too_large;
        continue;
      }
      e.flags |= metric::kEntryNative;
      e.values = std::span<const double>(in.native);
    }
    if (sizeof(metric::MetricBatchHeader) + metric::stamped_entry_size(e) > max_bytes) {
      // No record of the output ring can hold it.
      if (native) {
        ++in.local.dropped_native_too_large;
      } else {
        ++in.local.dropped_labels_too_long;
      }
      continue;
    }
    if (writer && writer->append_stamped(e)) {
      ++in.local.samples_applied;
      ++in.local.entries_written;
      continue;
    }
    close();
    if (!open() || !writer->append_stamped(e)) {
      // The output stays full: publish what is written, keep the record.
      close();
      out.publish();
      ++in.local.flush_stalls;
      in.resume = Impl::Input::Resume{v.lane, v.seq, i, true};
      --in.local.samples;  // the mapper counts this sample again when it is retried (the sum wraps back)
      return false;
    }
    ++in.local.samples_applied;
    ++in.local.entries_written;
  }
  if (br.error() != sample::DecodeError::kNone) ++in.local.decode_errors;
  close();
  out.publish();
  return true;
}

void Relay::Impl::publish_stats(Input& in) {
  EngineStats st = in.mapper->stats();
  st += in.local;
  st.quarantined_records = in.quarantined.load(std::memory_order_relaxed);
  std::lock_guard lock(in.mu);
  in.published = st;
}

void Relay::Impl::loop(Input& in) {
  std::int64_t next_stats_ns = 0;
  std::uint64_t stalls_seen = 0;
  while (!stop.load(std::memory_order_acquire)) {
    in.reader->wait(std::chrono::milliseconds(50));
    (void)in.reader->poll_while([&](const ring::RecordView& v) { return relay_record(in, v); }, kRelayPollRecords);
    if (in.journal) in.journal->end();
    const std::int64_t now = monotonic_ns();
    if (now >= next_stats_ns) {
      publish_stats(in);
      next_stats_ns = now + 100'000'000;
      if (in.local.flush_stalls != stalls_seen && warn.allow()) {
        spdlog::warn("processor: relay output ring {} full; input {} waits ({} similar suppressed)", output->path(),
                     in.ring.path(), warn.take_suppressed());
      }
      stalls_seen = in.local.flush_stalls;
    }
  }
  publish_stats(in);
}

Relay::Relay(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Relay::~Relay() { stop(); }

Result<std::unique_ptr<Relay>> Relay::create(const ProcessorOptions& options) {
  EngineOptions eo = options.engine;
  if (auto st = validate(eo); !st) return tl::unexpected(st.error());
  if (options.inputs.empty()) return invalid("processor: no input ring");
  if (options.output.empty()) return invalid("processor: no output ring");
  if (options.inputs.size() > 1024) return invalid("processor: relay: at most 1024 inputs");
  auto impl = std::make_unique<Impl>();
  impl->instance_id = eo.instance_id != 0 ? eo.instance_id : random_instance_id();
  auto out = ring::Ring::open(options.output);
  if (!out) return invalid("processor: " + options.output + ": " + out.error().message());
  if (out->lanes() < options.inputs.size()) {
    return invalid("processor: " + options.output + ": " + std::to_string(out->lanes()) +
                   " lanes, a relay needs one per input (" + std::to_string(options.inputs.size()) + ")");
  }
  impl->output.emplace(std::move(*out));
  eo.max_record_bytes = std::min<std::size_t>(eo.max_record_bytes, impl->output->max_record_bytes());
  if (eo.max_record_bytes < 4096) return invalid("processor: " + options.output + ": records under 4 KiB");
  impl->registry = std::make_unique<FamilyRegistry>(eo.max_families, eo.max_series, eo.max_series_per_metric);
  for (const std::string& path : options.inputs) {
    auto r = ring::Ring::open(path);
    if (!r) return invalid("processor: " + path + ": " + r.error().message());
    auto in = std::make_unique<Impl::Input>(std::move(*r));
    in->index = static_cast<std::uint16_t>(impl->inputs.size());
    auto p = ring::Producer::attach(*impl->output);
    if (!p) return invalid("processor: " + options.output + ": " + p.error().message());
    in->producer.emplace(std::move(*p));
    auto reader = ring::Reader::attach(in->ring, options.reader_name);
    if (!reader) return invalid("processor: " + path + ": " + reader.error().message());
    in->reader.emplace(std::move(*reader));
    auto journal = CrashJournal::open(CrashJournal::path_for(path, options.reader_name), in->ring.creation_id(),
                                      options.quarantine_after_crashes);
    if (!journal) {
      spdlog::warn("processor: {} (a record that kills the relay is not quarantined)", journal.error().message());
    } else {
      in->journal.emplace(std::move(*journal));
    }
    auto m = Matcher::create(eo.mapping);
    if (!m) return tl::unexpected(m.error());
    in->mapper = std::make_unique<SeriesMapper>(std::move(*m), *impl->registry, eo);
    in->mapper->relay_native(true);
    impl->inputs.push_back(std::move(in));
  }
  impl->options = options;
  impl->options.engine = eo;
  return std::unique_ptr<Relay>(new Relay(std::move(impl)));
}

Status Relay::start() {
  Impl& m = *impl_;
  if (m.started) return invalid("processor: already started");
  m.started = true;
  for (auto& in : m.inputs) {
    Impl::Input* p = in.get();
    in->thread = std::thread([&m, p] { m.loop(*p); });
  }
  return {};
}

void Relay::stop() noexcept {
  Impl& m = *impl_;
  if (!m.started) {
    for (auto& in : m.inputs)
      if (in->journal) in->journal->close();  // never read: nothing died
  }
  if (!m.started || m.stopped) return;
  m.stopped = true;
  m.stop.store(true, std::memory_order_release);
  for (auto& in : m.inputs) {
    in->thread.join();
    if (in->journal) in->journal->close();
  }
}

EngineStats Relay::stats() const {
  EngineStats s;
  for (const auto& in : impl_->inputs) {
    std::lock_guard lock(in->mu);
    s += in->published;
  }
  return s;
}

}  // namespace ringpipe::processors::detail
