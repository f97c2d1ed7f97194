// Aggregation throughput per shard at 1k / 100k / 1M series, memory per
// series, and mapping cost per sample with a 50-rule mapping file, each with
// a baseline measured in the same run:
//   BM_ShardApply          one shard's hot path, one sample at a time
//   BM_ShardApplyBatch     the same in batches of 256 with prefetching (what a shard thread does)
//   BM_ShardApplyBatchState the same with the crash-safe state store (undo log, one commit per batch)
//   BM_ShardFlush          a flush of 256 changed counters into metric-batch records (encoding)
//   BM_EngineAdd           mapping + labels + hash + shard (one thread does it all)
//   BM_BaselineUnorderedMap std::unordered_map<std::string, double> increment
//   BM_FloorOneLookup      one prefetched flat lookup and add per StatsD name, in the generator's
//                          order: the least any aggregator pays, and what 100x the series add to it
//   BM_Match*              the matcher with and without its cache
// Counters: samples/s ("items_per_second"), bytes_per_series (the shard's
// heap), state_file_bytes_per_series (slots and blocks in the state file).

#include <benchmark/benchmark.h>

#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine_parts.hpp"
#include "family_registry.hpp"
#include "flat_index.hpp"
#include "hash.hpp"
#include "ringpipe/processors/aggregator.hpp"
#include "ringpipe/sample/sample_batch.hpp"
#include "series_mapper.hpp"
#include "shard.hpp"
#include "state_store.hpp"

namespace {

using namespace ringpipe;
using namespace ringpipe::processors;

std::string host(std::int64_t i) { return "host-" + std::to_string(i); }

// One record per series: counter "requests_total{code=200,instance=host-i}".
struct Corpus {
  std::vector<std::vector<std::byte>> batches;  // one sample per batch record
  explicit Corpus(std::int64_t series) {
    batches.reserve(static_cast<std::size_t>(series));
    for (std::int64_t i = 0; i < series; ++i) {
      std::vector<std::byte> buf(256);
      sample::BatchWriter w(buf, 0, 0);
      const std::string h = host(i);
      const sample::Tag tags[] = {{"instance", h}, {"code", "200"}};
      (void)w.append(sample::Kind::kCounter, "requests.total", 1, 1, tags);
      buf.resize(w.finish());
      batches.push_back(std::move(buf));
    }
  }
  sample::SampleView view(std::size_t i) const {
    sample::BatchReader r(batches[i]);
    return *r.next();
  }
};

// Random visiting order over the series, so the cache sees realistic misses.
std::vector<std::uint32_t> order(std::int64_t series, std::size_t n) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<std::uint32_t> d(0, static_cast<std::uint32_t>(series - 1));
  std::vector<std::uint32_t> o(n);
  for (auto& x : o) x = d(rng);
  return o;
}

// RINGPIPE_BENCH_ITERS=N: every case runs exactly N iterations, so that an
// instruction count (callgrind, bench/processors_ir.sh) of two builds covers
// the same work.
void fixed_iterations(benchmark::internal::Benchmark* b) {
  if (const char* n = std::getenv("RINGPIPE_BENCH_ITERS")) b->Iterations(std::atol(n));
}

// A shard with every series of a Corpus mapped for it (not yet applied), as
// the shard benchmarks start: `ok` is false when a sample failed to map.
struct MappedShard {
  EngineOptions opts = options();
  detail::FamilyRegistry registry{opts.max_families, opts.max_series, opts.max_series_per_metric};
  std::vector<std::byte> labels;
  std::vector<detail::MappedSample> mapped;
  std::optional<detail::Shard> shard;
  bool ok = true;

  explicit MappedShard(std::int64_t series, detail::StateStore* store = nullptr)
      : mapped(static_cast<std::size_t>(series)) {
    auto matcher = Matcher::create(opts.mapping);
    auto specs = detail::build_specs(*matcher);
    detail::SeriesMapper mapper(std::move(*matcher), registry, opts);
    shard.emplace(0, 1, registry, specs, opts, 1, store);
    Corpus corpus(series);
    for (std::int64_t i = 0; i < series && ok; ++i) {
      ok = mapper.map(corpus.view(static_cast<std::size_t>(i)), labels, mapped[static_cast<std::size_t>(i)]);
    }
  }
  static EngineOptions options() {
    EngineOptions o;
    o.max_series = o.max_series_per_metric = 2'000'000;
    return o;
  }
};

void BM_ShardApply(benchmark::State& state) {
  const std::int64_t series = state.range(0);
  MappedShard ms(series);
  if (!ms.ok) {
    state.SkipWithError("map failed");
    return;
  }
  detail::Shard& shard = *ms.shard;
  const std::vector<std::byte>& labels = ms.labels;
  const std::vector<detail::MappedSample>& mapped = ms.mapped;
  for (const auto& m : mapped) shard.apply(m, labels.data(), 0);  // create every series first
  const auto ord = order(series, 1 << 20);
  std::size_t k = 0;
  for (auto _ : state) {
    shard.apply(mapped[ord[k]], labels.data(), 0);
    k = (k + 1) & ((1 << 20) - 1);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes_per_series"] =
      static_cast<double>(shard.memory_bytes()) / static_cast<double>(shard.series_count());
}
BENCHMARK(BM_ShardApply)
    ->Apply(fixed_iterations)
    ->Arg(1'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Unit(benchmark::kNanosecond);

// As the shard threads run: batches of 256 samples with prefetching.
// `with_state`: the shard keeps its series in a StateStore file under
// /dev/shm and commits each batch as one record segment, as a processor with
// `state: true` does.
void shard_apply_batch(benchmark::State& state, bool with_state) {
  const std::int64_t series = state.range(0);
  std::unique_ptr<detail::StateStore> store;
  std::string dir;
  if (with_state) {
    char tmpl[] = "/dev/shm/ringpipe-bench-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      state.SkipWithError("mkdtemp failed");
      return;
    }
    dir = tmpl;
    detail::StateGeometry g;
    g.slot_capacity = static_cast<std::uint64_t>(series) + 1024;
    g.arena_bytes = g.slot_capacity * 256;
    g.undo_bytes = 1 << 20;
    bool restored = false;
    std::string rejected;
    auto st = detail::StateStore::open(dir + "/shard-0.state", g, &restored, &rejected);
    if (!st) {
      state.SkipWithError(st.error().message().c_str());
      return;
    }
    store = std::move(*st);
  }
  MappedShard ms(series, store.get());
  if (!ms.ok) {
    state.SkipWithError("map failed");
    return;
  }
  detail::Shard& shard = *ms.shard;
  const std::vector<std::byte>& labels = ms.labels;
  const std::vector<detail::MappedSample>& mapped = ms.mapped;
  constexpr std::size_t kBatch = 256;
  std::uint64_t seq = 0;
  // Create every series first, in committed batches as the shard thread
  // would: one transaction for all of them would overflow the undo log and
  // leave most series to be created inside the timed loop.
  for (std::size_t i = 0; i < mapped.size(); i += kBatch) {
    const std::span<const detail::MappedSample> batch(mapped.data() + i, std::min(kBatch, mapped.size() - i));
    if (with_state) {
      const detail::RecordSegment seg{0, 0, ++seq, static_cast<std::uint32_t>(batch.size())};
      shard.apply_segments(batch, {&seg, 1}, labels.data(), 0);
    } else {
      shard.apply_batch(batch, labels.data(), 0);
    }
  }
  if (shard.series_count() != mapped.size()) {
    state.SkipWithError("not every series was created");
    return;
  }
  const auto ord = order(series, 1 << 20);
  // As a reader builds batches: each sample's label bytes are copied into
  // the stream in order, so a batch's labels are contiguous (not scattered
  // over the whole corpus).
  std::vector<detail::MappedSample> stream;
  std::vector<std::byte> stream_labels;
  stream.reserve(ord.size());
  for (const std::uint32_t o : ord) {
    detail::MappedSample m = mapped[o];
    const auto* from = labels.data() + m.labels_off;
    m.labels_off = static_cast<std::uint32_t>(stream_labels.size());
    stream_labels.insert(stream_labels.end(), from, from + m.labels_len);
    stream.push_back(m);
  }
  std::size_t k = 0;
  struct rusage ru0 {};
  ::getrusage(RUSAGE_SELF, &ru0);
  for (auto _ : state) {
    const std::span<const detail::MappedSample> batch(stream.data() + k, kBatch);
    if (with_state) {
      const detail::RecordSegment seg{0, 0, ++seq, static_cast<std::uint32_t>(kBatch)};
      shard.apply_segments(batch, {&seg, 1}, stream_labels.data(), 0);
    } else {
      shard.apply_batch(batch, stream_labels.data(), 0);
    }
    k = (k + kBatch) & ((1 << 20) - 1);
  }
  struct rusage ru1 {};
  ::getrusage(RUSAGE_SELF, &ru1);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kBatch));
  state.counters["faults_per_batch"] =
      static_cast<double>(ru1.ru_minflt - ru0.ru_minflt) / static_cast<double>(state.iterations());
  state.counters["bytes_per_series"] =
      static_cast<double>(shard.memory_bytes()) / static_cast<double>(shard.series_count());
  if (store) {  // the series' slots and blocks in the shared state file
    const detail::StateControl& c = store->control();
    state.counters["state_file_bytes_per_series"] =
        static_cast<double>(c.slot_high * sizeof(detail::StateSlot) + c.arena_used) /
        static_cast<double>(shard.series_count());
  }
  if (!dir.empty()) std::filesystem::remove_all(dir);  // unlinked; the mapping lives until the shard and store go
}
void BM_ShardApplyBatch(benchmark::State& state) { shard_apply_batch(state, false); }
void BM_ShardApplyBatchState(benchmark::State& state) { shard_apply_batch(state, true); }
BENCHMARK(BM_ShardApplyBatch)
    ->Apply(fixed_iterations)
    ->Arg(1'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ShardApplyBatchState)
    ->Apply(fixed_iterations)
    ->Arg(1'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Unit(benchmark::kMicrosecond);

// Encodes every record into one reused buffer (nothing kept), as a ring claim would.
class DiscardSink final : public RecordSink {
 public:
  std::span<std::byte> begin_record(std::size_t min_bytes) noexcept override {
    if (buf_.size() < min_bytes) return {};
    return buf_;
  }
  void commit_record(std::size_t used_bytes) noexcept override { bytes_ += used_bytes; }
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }

 private:
  std::vector<std::byte> buf_ = std::vector<std::byte>(64 << 10);
  std::size_t bytes_ = 0;
};

// One iteration: 256 of the series change, then a (delta) flush encodes them.
void BM_ShardFlush(benchmark::State& state) {
  const std::int64_t series = state.range(0);
  MappedShard ms(series);
  if (!ms.ok) {
    state.SkipWithError("map failed");
    return;
  }
  detail::Shard& shard = *ms.shard;
  const std::vector<std::byte>& labels = ms.labels;
  const std::vector<detail::MappedSample>& mapped = ms.mapped;
  DiscardSink sink;
  for (const auto& m : mapped) shard.apply(m, labels.data(), 0);
  shard.flush(0, 0, sink, true);  // the first flush is the snapshot
  const auto ord = order(series, 1 << 20);
  std::size_t k = 0;
  std::int64_t now = 0;
  for (auto _ : state) {
    for (int i = 0; i < 256; ++i) {
      shard.apply(mapped[ord[k]], labels.data(), now);
      k = (k + 1) & ((1 << 20) - 1);
    }
    ++now;
    shard.flush(now, now, sink, false);
  }
  benchmark::DoNotOptimize(sink.bytes());
  state.SetItemsProcessed(state.iterations() * 256);
}
BENCHMARK(BM_ShardFlush)->Apply(fixed_iterations)->Arg(1'000)->Arg(100'000)->Unit(benchmark::kMicrosecond);

void BM_EngineAdd(benchmark::State& state) {
  const std::int64_t series = state.range(0);
  EngineOptions opts;
  opts.max_series = opts.max_series_per_metric = 2'000'000;
  opts.mapping.cache_size = 1000;
  auto engine = AggregatorEngine::create(opts);
  Corpus corpus(series);
  std::vector<sample::SampleView> views;
  for (std::int64_t i = 0; i < series; ++i) views.push_back(corpus.view(static_cast<std::size_t>(i)));
  for (const auto& v : views) engine->add(v, 0);
  const auto ord = order(series, 1 << 20);
  std::size_t k = 0;
  for (auto _ : state) {
    engine->add(views[ord[k]], 0);
    k = (k + 1) & ((1 << 20) - 1);
  }
  state.SetItemsProcessed(state.iterations());
  const EngineStats s = engine->stats();
  state.counters["bytes_per_series"] = static_cast<double>(s.state_bytes) / static_cast<double>(s.series_live);
}
BENCHMARK(BM_EngineAdd)
    ->Apply(fixed_iterations)
    ->Arg(1'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Unit(benchmark::kNanosecond);
// A fixed number of adds (CG_ITERS, default 1000) for instruction counts
// under callgrind that do not depend on code layout or load:
// bench/engine_add_ir.sh runs it twice and prints instructions per add.
BENCHMARK(BM_EngineAdd)
    ->Name("BM_EngineAddCounted")
    ->Arg(1'000)
    ->Iterations(std::getenv("CG_ITERS") ? std::atol(std::getenv("CG_ITERS")) : 1000);

// Baseline: the usual "map of string to double" aggregator, key built per sample.
void BM_BaselineUnorderedMap(benchmark::State& state) {
  const std::int64_t series = state.range(0);
  Corpus corpus(series);
  std::vector<sample::SampleView> views;
  for (std::int64_t i = 0; i < series; ++i) views.push_back(corpus.view(static_cast<std::size_t>(i)));
  std::unordered_map<std::string, double> map;
  std::string key;
  auto add = [&](const sample::SampleView& v) {
    key.assign(v.name);
    v.for_each_tag([&](const sample::Tag& t) {
      key += ',';
      key += t.key;
      key += '=';
      key += t.value;
    });
    map[key] += v.value;
  };
  for (const auto& v : views) add(v);
  const auto ord = order(series, 1 << 20);
  std::size_t k = 0;
  for (auto _ : state) {
    add(views[ord[k]]);
    k = (k + 1) & ((1 << 20) - 1);
  }
  state.SetItemsProcessed(state.iterations());
  // Node (key + value + hash + next) plus the bucket array: a lower bound.
  double bytes = 0;
  for (const auto& [k2, v] : map) bytes += sizeof(std::pair<const std::string, double>) + 16 + k2.capacity() + 1;
  bytes += static_cast<double>(map.bucket_count() * sizeof(void*));
  state.counters["bytes_per_series"] = bytes / static_cast<double>(map.size());
}
BENCHMARK(BM_BaselineUnorderedMap)
    ->Apply(fixed_iterations)
    ->Arg(1'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Unit(benchmark::kNanosecond);

// The floor of aggregation per sample, and what more series cost it: what
// no aggregator can do with less. A sample's name (StatsD's
// "bench.metric.<i>", the e2e generator's names, sent in its round-robin
// order) is hashed and looked up in one flat index, its key checked in full,
// and its value added; the index and entries of samples 16 ahead are
// prefetched, as the processor's mapper and shards do. Nothing is mapped,
// labelled, logged or made crash-safe. At 1k series the table sits in a
// core's L2; at 100k it does not: the rise from the 1k row to the 100k row
// is what the memory hierarchy alone charges each sample for 100x the series.
void BM_FloorOneLookup(benchmark::State& state) {
  const std::int64_t series = state.range(0);
  constexpr std::size_t kSamples = std::size_t{1} << 20;  // a round-robin walk, as the generator sends
  constexpr std::size_t kAhead = 16;
  struct Entry {
    std::uint64_t hash;
    double value;
    std::string_view name;
  };
  std::vector<std::string> names;
  names.reserve(static_cast<std::size_t>(series));
  for (std::int64_t i = 0; i < series; ++i) names.push_back("bench.metric." + std::to_string(i));
  std::vector<std::uint64_t> hashes(names.size());
  common::FlatIndex index(names.size());
  std::vector<Entry> entries;
  entries.reserve(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    hashes[i] = detail::hash_mem(names[i].data(), names[i].size());
    index.insert(hashes[i], static_cast<std::uint32_t>(i));
    entries.push_back(Entry{hashes[i], 0, names[i]});
  }
  // A sample as the processor reads it: the name's bytes (in the ring, so not
  // in the index's cache lines) and a value; hashed when taken.
  std::string ring_bytes;
  std::vector<std::uint32_t> ring_at(kSamples + 1);
  for (std::size_t k = 0; k < kSamples; ++k) {
    ring_at[k] = static_cast<std::uint32_t>(ring_bytes.size());
    ring_bytes += names[k % names.size()];
  }
  ring_at[kSamples] = static_cast<std::uint32_t>(ring_bytes.size());
  const auto name_at = [&](std::size_t at) {
    at &= kSamples - 1;
    return std::string_view(ring_bytes).substr(ring_at[at], ring_at[at + 1] - ring_at[at]);
  };
  std::array<std::uint64_t, kAhead> ahead{};
  std::size_t k = 0;
  const auto hash_of = [&](std::size_t at) {
    const std::string_view n = name_at(at);
    const std::uint64_t h = detail::hash_mem(n.data(), n.size());
    index.prefetch(h);
    return h;
  };
  for (std::size_t j = 0; j < kAhead; ++j) ahead[j] = hash_of(j);
  std::size_t missed = 0;
  for (auto _ : state) {
    const std::uint64_t h = ahead[k % kAhead];
    const std::string_view n = name_at(k);
    ahead[k % kAhead] = hash_of(k + kAhead);
    const std::uint32_t half = index.home_value(ahead[(k + kAhead / 2) % kAhead]);
    if (half != common::FlatIndex::kNone) __builtin_prefetch(&entries[half]);
    const std::uint32_t v = index.find(h, [&](std::uint32_t e) { return entries[e].name == n; });
    if (v == common::FlatIndex::kNone) {
      ++missed;
    } else {
      entries[v].value += 1;
    }
    ++k;
  }
  if (missed != 0) state.SkipWithError("a name was not found");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FloorOneLookup)
    ->Apply(fixed_iterations)
    ->Arg(1'000)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Unit(benchmark::kNanosecond);

MappingConfig fifty_rules() {
  MappingConfig c;
  for (int i = 0; i < 40; ++i) {
    MappingRule r;
    r.match = "app" + std::to_string(i) + ".*.request.*";
    r.name = "app" + std::to_string(i) + "_requests_total";
    r.labels = {{"service", "$1"}, {"outcome", "$2"}};
    c.rules.push_back(r);
  }
  for (int i = 0; i < 10; ++i) {
    MappingRule r;
    r.match_type = MatchType::kRegex;
    r.match = "^svc" + std::to_string(i) + "\\.([a-z]+)\\.latency$";
    r.name = "svc" + std::to_string(i) + "_latency_seconds";
    r.labels = {{"op", "$1"}};
    c.rules.push_back(r);
  }
  return c;
}

std::vector<std::string> names(int n) {
  std::vector<std::string> out;
  std::mt19937 rng(7);
  for (int i = 0; i < n; ++i) {
    const int kind = static_cast<int>(rng() % 10);
    if (kind < 8) {
      out.push_back("app" + std::to_string(rng() % 40) + ".svc" + std::to_string(rng() % 50) + ".request." +
                    (rng() % 2 ? "ok" : "fail"));
    } else {
      out.push_back("svc" + std::to_string(rng() % 10) + ".op" + std::string(1, static_cast<char>('a' + rng() % 26)) +
                    ".latency");
    }
  }
  return out;
}

void BM_Match(benchmark::State& state) {
  MappingConfig c = fifty_rules();
  c.cache_size = static_cast<std::size_t>(state.range(0));
  auto m = Matcher::create(c);
  const auto ns = names(4096);
  std::size_t k = 0;
  std::size_t matched = 0;
  for (auto _ : state) {
    const MatchResult r = m->match(ns[k], MatchClass::kCounter);
    matched += r.rule != nullptr;
    benchmark::DoNotOptimize(r.name.data());
    k = (k + 1) & 4095;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["matched"] = static_cast<double>(matched) / static_cast<double>(state.iterations());
  state.counters["hit_ratio"] =
      static_cast<double>(m->stats().cache_hits) / static_cast<double>(std::max<std::uint64_t>(1, m->stats().lookups));
}
// 0 = no cache (FSM + regex every time); 1000 = statsd_exporter's default; 8192 > distinct names.
BENCHMARK(BM_Match)->Apply(fixed_iterations)->Arg(0)->Arg(1000)->Arg(8192)->Unit(benchmark::kNanosecond);

}  // namespace

BENCHMARK_MAIN();
