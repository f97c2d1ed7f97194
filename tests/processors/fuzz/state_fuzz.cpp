// libFuzzer target for the processor's state file (also built as a corpus
// replayer): StateStore::open over a crafted file, then a shard restoring
// from it, taking new series and flushing. Fuzzed bytes alone never carry the
// boot id and geometry checksum, so the input patches a valid store instead:
// a committed one with series of every kind (histograms with native
// buckets) and an open transaction (an undo log to roll back). Byte 0, bit
// 0: patches may reach the checked header fields (offsets 0..127) too. Then
// patches {u32 offset (mod the file size), u16 length, bytes}. A store that opens must hold its control block in
// range; a write outside the mapping faults, one in the heap trips ASan.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine_parts.hpp"
#include "family_registry.hpp"
#include "ringpipe/common/unique_fd.hpp"
#include "ringpipe/processors/aggregator.hpp"
#include "ringpipe/sample/sample_batch.hpp"
#include "series_mapper.hpp"
#include "shard.hpp"
#include "state_store.hpp"

namespace {

using namespace ringpipe;
using namespace ringpipe::processors;

#define STATE_FUZZ_CHECK(cond)                                \
  do {                                                        \
    if (!(cond)) {                                            \
      std::fprintf(stderr, "state fuzz: %s failed\n", #cond); \
      std::abort();                                           \
    }                                                         \
  } while (0)

detail::StateGeometry geometry() {
  detail::StateGeometry g;
  g.slot_capacity = 64;
  g.arena_bytes = 1 << 14;
  g.undo_bytes = 4096;
  return g;
}

// A shard over a store, as a processor's shard thread has it.
struct Engine {
  explicit Engine(detail::StateStore* store) {
    opts.mapping.defaults.observer_type = ObserverType::kHistogram;
    // Native buckets too, few enough that the schema is lowered: the store
    // holds native regions, and a series may move to a larger block.
    opts.mapping.defaults.native_bucket_factor = 1.1;
    opts.mapping.defaults.native_max_buckets = 12;
    auto m = Matcher::create(opts.mapping);
    STATE_FUZZ_CHECK(m.has_value());
    specs = detail::build_specs(*m);
    mapper.emplace(std::move(*m), registry, opts);
    shard.emplace(0, 1, registry, specs, opts, 7, store);
  }
  // Maps and applies one record of `n` samples of every kind; commits it
  // when `seq` is set (as one record segment), else leaves it open.
  void apply(int first, int n, std::uint64_t seq) {
    std::vector<std::byte> buf(1 << 14);
    sample::BatchWriter w(buf, 1, 0);
    for (int i = first; i < first + n; ++i) {
      const std::string v = std::to_string(i);
      const sample::Tag tags[] = {{"k", v}};
      (void)w.append(sample::Kind::kCounter, "c", i, 1.0, tags);
      (void)w.append(sample::Kind::kGauge, "g", i, 1.0, tags);
      (void)w.append(sample::Kind::kTimer, "h", 0.001 * i, 1.0, tags);
      (void)w.append(sample::Kind::kTimer, "h", -0.5 * i, 1.0, tags);
      (void)w.append(sample::Kind::kTimer, "h", 0, 1.0, tags);
      (void)w.append(sample::Kind::kSet, "s", i, 1.0, tags, v);
    }
    const std::size_t len = w.finish();
    std::vector<detail::MappedSample> ms;
    labels.clear();
    sample::BatchReader r(std::span<const std::byte>(buf.data(), len));
    while (auto s = r.next()) {
      detail::MappedSample m;
      if (mapper->map(*s, labels, m)) ms.push_back(m);
    }
    if (seq == 0) {
      shard->apply_batch(ms, labels.data(), 0);
      return;
    }
    const detail::RecordSegment seg{0, 0, seq, static_cast<std::uint32_t>(ms.size())};
    shard->apply_segments(ms, {&seg, 1}, labels.data(), 0);
  }
  EngineOptions opts;
  detail::FamilyRegistry registry{opts.max_families, opts.max_series, opts.max_series_per_metric};
  std::shared_ptr<const detail::SpecTable> specs;
  std::optional<detail::SeriesMapper> mapper;
  std::optional<detail::Shard> shard;
  std::vector<std::byte> labels;
};

// The scratch directory, removed at exit (a plain array: it outlives every
// static object's destruction).
char g_dir[256];

void remove_dir() {
  for (const char* name : {"/s.state", "/s.state.rejected"}) {
    ::unlink((std::string(g_dir) + name).c_str());
  }
  ::rmdir(g_dir);
}

struct Base {
  std::string path;
  std::vector<std::byte> bytes;  // the valid store the inputs patch
};

const Base& base() {
  static const Base b = [] {
    Base out;
    const char* tmp = std::getenv("TMPDIR");
    std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/ringpipe-state-fuzz-XXXXXX";
    STATE_FUZZ_CHECK(dir.size() < sizeof g_dir && ::mkdtemp(dir.data()) != nullptr);
    std::memcpy(g_dir, dir.c_str(), dir.size() + 1);
    std::atexit(remove_dir);
    out.path = dir + "/s.state";
    bool restored = false;
    std::string rejected;
    auto st = detail::StateStore::open(out.path, geometry(), &restored, &rejected);
    STATE_FUZZ_CHECK(st.has_value());
    {
      Engine e(st->get());
      e.apply(0, 6, 1);
      e.apply(3, 6, 0);  // the open transaction: updates and new series
    }
    UniqueFd fd(::open(out.path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat s {};
    STATE_FUZZ_CHECK(fd.valid() && ::fstat(fd.get(), &s) == 0);
    out.bytes.resize(static_cast<std::size_t>(s.st_size));
    STATE_FUZZ_CHECK(::pread(fd.get(), out.bytes.data(), out.bytes.size(), 0) == s.st_size);
    return out;
  }();
  return b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Base& b = base();
  std::vector<std::byte> file = b.bytes;
  const std::uint64_t lo = size > 0 && (data[0] & 1) != 0 ? 0 : 128;
  std::size_t pos = 1;
  while (pos + 6 <= size) {
    std::uint32_t off;
    std::uint16_t len;
    std::memcpy(&off, data + pos, 4);
    std::memcpy(&len, data + pos + 4, 2);
    pos += 6;
    const std::uint64_t at = lo + off % (file.size() - lo);
    const std::size_t n = std::min<std::size_t>({len, size - pos, file.size() - at});
    std::memcpy(file.data() + at, data + pos, n);
    pos += n;
  }
  ::unlink((b.path + ".rejected").c_str());
  {
    UniqueFd fd(::open(b.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    STATE_FUZZ_CHECK(fd.valid());
    STATE_FUZZ_CHECK(::pwrite(fd.get(), file.data(), file.size(), 0) == static_cast<ssize_t>(file.size()));
  }
  const detail::StateGeometry g = geometry();
  bool restored = false;
  std::string rejected;
  auto st = detail::StateStore::open(b.path, g, &restored, &rejected);
  STATE_FUZZ_CHECK(st.has_value());  // refused files are moved aside, never an error
  const detail::StateControl& c = (*st)->control();
  STATE_FUZZ_CHECK(c.slot_high <= g.slot_capacity && c.arena_used <= g.arena_bytes && c.arena_used % 8 == 0);
  STATE_FUZZ_CHECK(!(*st)->in_tx());
  Engine e(st->get());
  e.apply(100, 4, 2);
  VectorSink sink;
  e.shard->flush(0, 0, sink, true);
  return 0;
}
