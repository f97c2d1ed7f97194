// processor_rss: the memory of a whole processor process that holds N
// distinct counter series (default 1M), with the crash-safe state store on
// (pass --no-state for the heap-only engine). A forked child runs a real
// Processor (reader, gate and shard threads) on real ring files under
// /dev/shm; the parent writes N series, 64 samples per ring record, into the
// raw ring. The child measures itself twice: idle after start() (the
// baseline) and once every series is applied and flushed. It prints, from
// /proc/self/status, smaps_rollup and smaps: VmHWM, VmRSS, RssAnon,
// RssShmem, Pss, and the resident bytes of each kind of mapping (state
// files, rings, the rest), then bytes per series above the idle baseline.
//
// It also prints what taking the series in cost the processor: its CPU
// seconds (user + system, getrusage) and minor page faults from the idle
// baseline to the measurement, and the wall time until every series was live.
// With --names each series is a name of its own (bench.metric.<i>, no tags:
// StatsD's shape, a family per series) instead of one name with 1M
// `instance` values.
//
// Usage: processor_rss [series] [shards] [--no-state] [--names]

#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "ringpipe/processors/processor.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace {

using namespace ringpipe;
using namespace std::chrono_literals;

struct Memory {
  std::map<std::string, std::uint64_t> kib;  // VmHWM, VmRSS, RssAnon, RssShmem, Pss, state, rings, other
};

// "Key:   123 kB" lines of a /proc file, in KiB.
void read_kib(const char* file, std::initializer_list<const char*> keys, Memory& m) {
  std::ifstream f(file);
  std::string line;
  while (std::getline(f, line)) {
    for (const char* k : keys) {
      const std::size_t n = std::strlen(k);
      if (line.compare(0, n, k) == 0 && line.size() > n && line[n] == ':') {
        m.kib[k] = std::strtoull(line.c_str() + n + 1, nullptr, 10);
      }
    }
  }
}

// Resident KiB per mapping kind: the state files, the ring files, everything else.
void read_smaps(const std::string& dir, Memory& m) {
  std::ifstream f("/proc/self/smaps");
  std::string line;
  std::string kind = "other";
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    const bool header = std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') < line.find(' ');
    if (header) {
      const std::size_t slash = line.find('/');
      const std::string path = slash == std::string::npos ? "" : line.substr(slash);
      if (path.rfind(dir, 0) == 0) {
        kind = path.find(".state") != std::string::npos ? "state" : "rings";
      } else {
        kind = "other";
      }
    } else if (line.rfind("Rss:", 0) == 0) {
      m.kib[kind] += std::strtoull(line.c_str() + 4, nullptr, 10);
    }
  }
}

Memory measure(const std::string& dir) {
  Memory m;
  read_kib("/proc/self/status", {"VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"}, m);
  read_kib("/proc/self/smaps_rollup", {"Pss"}, m);
  m.kib["state"] = m.kib["rings"] = m.kib["other"] = 0;
  read_smaps(dir, m);
  return m;
}

void print(const char* what, const Memory& m) {
  std::printf("%-22s", what);
  for (const char* k : {"VmHWM", "VmRSS", "RssAnon", "RssShmem", "Pss", "state", "rings", "other"}) {
    std::printf(" %s=%.1fMiB", k, static_cast<double>(m.kib.at(k)) / 1024.0);
  }
  std::printf("\n");
}

int run_processor(const std::string& dir, std::uint64_t series, std::uint32_t shards, bool state, int ready_fd) {
  processors::ProcessorOptions po;
  po.inputs = {dir + "/raw"};
  po.output = dir + "/metrics";
  po.engine.shards = shards;
  po.engine.max_series = series + series / 4;
  po.engine.max_series_per_metric = po.engine.max_series;
  po.engine.max_families = po.engine.max_series;
  po.flush_interval = 200ms;
  if (state) po.state_dir = dir + "/state";
  auto p = processors::Processor::create(po);
  if (!p) {
    std::fprintf(stderr, "processor: %s\n", p.error().message().c_str());
    return 2;
  }
  if (!(*p)->start()) return 3;
  std::this_thread::sleep_for(500ms);
  const Memory idle = measure(dir);
  const bench::ProcessUsage idle_use = bench::process_usage();
  const auto began = std::chrono::steady_clock::now();
  if (::write(ready_fd, "r", 1) != 1) return 4;
  const auto deadline = std::chrono::steady_clock::now() + 600s;
  while ((*p)->stats().samples_applied < series || (*p)->stats().series_live < series) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "timeout: %llu of %llu samples applied\n",
                   static_cast<unsigned long long>((*p)->stats().samples_applied),
                   static_cast<unsigned long long>(series));
      return 5;
    }
    std::this_thread::sleep_for(50ms);
  }
  const double live_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  std::this_thread::sleep_for(1s);  // a few more flushes: output records written, queues drained
  const Memory full = measure(dir);
  const bench::ProcessUsage full_use = bench::process_usage();
  const processors::EngineStats st = (*p)->stats();
  (*p)->stop();
  print("idle (baseline)", idle);
  print("with series", full);
  const double n = static_cast<double>(series);
  auto per = [&](const char* k) {
    return static_cast<double>(full.kib.at(k) - std::min(full.kib.at(k), idle.kib.at(k))) * 1024.0 / n;
  };
  std::printf("series=%llu shards=%u state=%s series_live=%llu engine_state_bytes=%.1fMiB\n",
              static_cast<unsigned long long>(series), shards, state ? "on" : "off",
              static_cast<unsigned long long>(st.series_live), static_cast<double>(st.state_bytes) / 1048576.0);
  std::printf("bytes/series above idle: VmRSS=%.1f RssAnon=%.1f state=%.1f Pss=%.1f; VmHWM total=%.1fMiB\n",
              per("VmRSS"), per("RssAnon"), per("state"), per("Pss"),
              static_cast<double>(full.kib.at("VmHWM")) / 1024.0);
  std::printf("taking them in: cpu=%.3fs minflt=%ld all live after %.3fs\n", full_use.cpu_s - idle_use.cpu_s,
              full_use.minflt - idle_use.minflt, live_s);
  return 0;
}

int produce(const std::string& dir, std::uint64_t series, bool names) {
  auto ring = ring::Ring::open(dir + "/raw");
  if (!ring) return 10;
  auto prod = ring::Producer::attach(*ring);
  if (!prod) return 11;
  std::vector<std::byte> buf(1 << 16);
  constexpr std::uint64_t kPerRecord = 64;
  for (std::uint64_t i = 0; i < series; i += kPerRecord) {
    sample::BatchWriter w(buf, 0, 0);
    for (std::uint64_t j = i; j < std::min(series, i + kPerRecord); ++j) {
      const std::string host = "host-" + std::to_string(j);
      const sample::Tag tags[] = {{"instance", host}, {"code", "200"}};
      const bool ok = names ? w.append(sample::Kind::kCounter, "bench.metric." + std::to_string(j), 1, 1, {})
                            : w.append(sample::Kind::kCounter, "requests.total", 1, 1, tags);
      if (!ok) return 12;
    }
    const std::size_t n = w.finish();
    if (prod->write(sample::kSampleBatchRecord, std::span<const std::byte>(buf.data(), n), 60s) !=
        ring::WriteStatus::kOk) {
      return 13;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  (void)mallopt(M_MMAP_THRESHOLD, 4 << 20);  // as the ringpipe binary's main() sets it
  std::uint64_t series = 1'000'000;
  std::uint32_t shards = 2;
  bool state = true;
  bool names = false;
  int pos = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-state") == 0) {
      state = false;
    } else if (std::strcmp(argv[i], "--names") == 0) {
      names = true;
    } else if (pos++ == 0) {
      series = std::strtoull(argv[i], nullptr, 10);
    } else {
      shards = static_cast<std::uint32_t>(std::strtoul(argv[i], nullptr, 10));
    }
  }
  char tmpl[] = "/dev/shm/ringpipe-rss-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;
  ring::RingOptions raw;  // 64 MiB as in config/examples/minimal.yaml
  raw.lane_capacity_bytes = 8u << 20;
  raw.lanes = 8;
  ring::RingOptions metrics;  // 16 MiB
  metrics.lane_capacity_bytes = 2u << 20;
  metrics.lanes = 8;
  if (!ring::Ring::create(dir + "/raw", raw) || !ring::Ring::create(dir + "/metrics", metrics)) return 1;
  int ready[2];
  if (::pipe(ready) != 0) return 1;
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(ready[0]);
    const int r = run_processor(dir, series, shards, state, ready[1]);
    std::fflush(stdout);
    _exit(r);
  }
  ::close(ready[1]);
  char c;
  int rc = ::read(ready[0], &c, 1) == 1 ? produce(dir, series, names) : 1;
  int status = 0;
  ::waitpid(child, &status, 0);
  if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) rc = 20;
  std::filesystem::remove_all(dir);
  return rc;
}
