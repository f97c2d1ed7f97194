// ring_bench: the shared-memory ring against the ways one would otherwise move
// samples between (or within) processes, measured in the same run.
//
//   ring_bench [--producers P] [--readers R] [--batch B] [--payload BYTES] [--samples N]
//              [--mode throughput|latency|attach|pss|all] [--dir DIR]
//
// throughput: P producer processes and R reader processes on one ring (each
//   reader receives every sample: fan-out); then the same workload through
//   moodycamel::ConcurrentQueue in one process (R queues, P producer threads),
//   through Unix stream sockets between processes, and memcpy bandwidth.
// latency: commit -> reader-sees-it, spinning and sleeping readers.
// attach: open + attach time of a 1 GiB ring.  pss: PSS of 8 readers of one ring.

#include <concurrentqueue.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "ringpipe/common/log.hpp"
#include "ringpipe/ring/ring.hpp"

namespace {

using namespace ringpipe;
using ringpipe::ring::Overflow;

struct Args {
  int producers = 1;
  int readers = 1;
  int batch = 1;
  std::size_t payload = 32;
  std::uint64_t samples = 20'000'000;
  std::string mode = "throughput";
  std::string dir = "/dev/shm/ringpipe-bench";
  std::uint64_t lane_bytes = 1u << 20;
  bool spin = false;  // readers poll and yield instead of wait() (spin, yield, futex)
};

// Pins the calling process or thread to one CPU (readers first, then
// producers, round robin over the CPUs), so every transport runs with the
// same placement and the scheduler does not stack two spinners on one CPU.
void pin(int index) {
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  if (cpus <= 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(index % cpus, &set);
  ::sched_setaffinity(0, sizeof set, &set);
}

double now_s() { return static_cast<double>(monotonic_ns()) / 1e9; }

// State shared by the forked processes of one measurement.
struct Shared {
  std::atomic<int> ready;
  std::atomic<int> go;
  std::atomic<int> done;
  std::atomic<std::int64_t> t_start;
  std::atomic<std::int64_t> t_end[64];
  std::atomic<std::uint64_t> received[64];
};

Shared* shared_block() {
  void* p = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return new (p) Shared{};
}

template <class F>
pid_t spawn(F&& f) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(f());
  return pid;
}

void wait_all(const std::vector<pid_t>& pids) {
  for (pid_t p : pids) ::waitpid(p, nullptr, 0);
}

// Per-reader samples/s: each reader's count over (its end - common start).
double per_reader_rate(Shared* sh, int readers, std::uint64_t expect, bool* complete) {
  double sum = 0;
  *complete = true;
  for (int r = 0; r < readers; ++r) {
    const double secs = static_cast<double>(sh->t_end[r].load() - sh->t_start.load()) / 1e9;
    sum += static_cast<double>(sh->received[r].load()) / secs;
    if (sh->received[r].load() != expect) {
      *complete = false;
      std::fprintf(stderr, "reader %d received %llu of %llu\n", r,
                   static_cast<unsigned long long>(sh->received[r].load()), static_cast<unsigned long long>(expect));
    }
  }
  return sum / readers;
}

void start_when_ready(Shared* sh, int parties) {
  while (sh->ready.load() < parties) std::this_thread::yield();
  sh->t_start.store(monotonic_ns());
  sh->go.store(1);
}

double bench_ring(const Args& a, bool* complete) {
  const std::string path = a.dir + "/throughput";
  std::filesystem::remove(path);
  ring::RingOptions o;
  o.lane_capacity_bytes = a.lane_bytes;
  o.lanes = static_cast<std::uint32_t>(std::max(a.producers, 1));
  o.max_readers = static_cast<std::uint32_t>(std::max(a.readers, 1));
  o.overflow = Overflow::kBlock;
  auto created = ring::Ring::create(path, o);
  if (!created) {
    std::fprintf(stderr, "%s\n", created.error().message().c_str());
    std::exit(1);
  }
  Shared* sh = shared_block();
  const std::uint64_t per_producer = a.samples / static_cast<std::uint64_t>(a.producers);
  const std::uint64_t total = per_producer * static_cast<std::uint64_t>(a.producers);
  std::vector<pid_t> pids;
  for (int r = 0; r < a.readers; ++r) {
    pids.push_back(spawn([&, r] {
      pin(r);
      auto rg = ring::Ring::open(path);
      auto rd = ring::Reader::attach(*rg, "bench" + std::to_string(r));
      sh->ready.fetch_add(1);
      while (!sh->go.load()) std::this_thread::yield();
      std::uint64_t got = 0, sum = 0;
      while (got < total) {
        const std::size_t n =
            rd->poll([&](const ring::RecordView& v) { sum += static_cast<std::uint8_t>(v.payload[0]); });
        got += n;
        if (n == 0) {
          if (a.spin) {
            std::this_thread::yield();
          } else {
            rd->wait(std::chrono::milliseconds(100));
          }
        }
      }
      sh->t_end[r].store(monotonic_ns());
      sh->received[r].store(got);
      return static_cast<int>(sum & 1) * 0;
    }));
  }
  for (int p = 0; p < a.producers; ++p) {
    pids.push_back(spawn([&, p] {
      pin(a.readers + p);
      auto rg = ring::Ring::open(path);
      auto pr = ring::Producer::attach(*rg);
      std::vector<std::byte> buf(a.payload, std::byte{1});
      sh->ready.fetch_add(1);
      while (!sh->go.load()) std::this_thread::yield();
      for (std::uint64_t i = 0; i < per_producer;) {
        if (a.batch == 1) {  // a record that is its own batch: written and published in one call
          if (pr->try_write(1, buf) != ring::WriteStatus::kOk &&
              pr->write(1, buf, std::chrono::seconds(30)) != ring::WriteStatus::kOk) {
            return 2;
          }
          ++i;
          continue;
        }
        for (int b = 0; b < a.batch && i < per_producer; ++b, ++i) {
          if (pr->try_append(1, buf) != ring::WriteStatus::kOk) {
            // Full: publish what we have and wait for room (block policy).
            pr->publish();
            if (pr->write(1, buf, std::chrono::seconds(30)) != ring::WriteStatus::kOk) return 2;
          }
        }
        pr->publish();
      }
      return 0;
    }));
  }
  start_when_ready(sh, a.readers + a.producers);
  wait_all(pids);
  const double rate = per_reader_rate(sh, a.readers, total, complete);
  const ring::RingStats st = created->stats();
  std::uint64_t full_waits = 0, wakes = 0, sleeps = 0;
  for (const auto& l : st.lane) {
    full_waits += l.full_waits;
    wakes += l.wakes;
  }
  for (const auto& r : st.readers) sleeps += r.sleeps;
  std::printf("ring diagnostics: producer full waits=%llu wake syscalls=%llu reader sleeps=%llu\n",
              static_cast<unsigned long long>(full_waits), static_cast<unsigned long long>(wakes),
              static_cast<unsigned long long>(sleeps));
  std::filesystem::remove(path);
  return rate;
}

template <std::size_t N>
struct Item {
  std::byte bytes[N];
};

template <class Item>
double bench_moodycamel_items(const Args& a, bool* complete, bool bulk) {
  // R queues for R readers (a queue hands each item to one consumer; fan-out
  // means every producer enqueues into every reader's queue).
  std::vector<std::unique_ptr<moodycamel::ConcurrentQueue<Item>>> queues;
  for (int r = 0; r < a.readers; ++r) {
    queues.push_back(std::make_unique<moodycamel::ConcurrentQueue<Item>>(1 << 16, a.producers, 0));
  }
  const std::uint64_t per_producer = a.samples / static_cast<std::uint64_t>(a.producers);
  const std::uint64_t total = per_producer * static_cast<std::uint64_t>(a.producers);
  std::atomic<int> go{0};
  std::vector<std::uint64_t> got(static_cast<std::size_t>(a.readers));
  std::vector<std::int64_t> end(static_cast<std::size_t>(a.readers));
  std::int64_t start = 0;
  std::vector<std::thread> threads;
  for (int r = 0; r < a.readers; ++r) {
    threads.emplace_back([&, r] {
      pin(r);
      std::vector<Item> out(static_cast<std::size_t>(std::max(a.batch, 1)));
      moodycamel::ConsumerToken tok(*queues[static_cast<std::size_t>(r)]);
      std::uint64_t n = 0, sum = 0;
      while (!go.load()) std::this_thread::yield();
      while (n < total) {
        const std::size_t k = bulk ? queues[static_cast<std::size_t>(r)]->try_dequeue_bulk(tok, out.data(), out.size())
                                   : (queues[static_cast<std::size_t>(r)]->try_dequeue(tok, out[0]) ? 1 : 0);
        for (std::size_t i = 0; i < k; ++i) sum += static_cast<std::uint8_t>(out[i].bytes[0]);
        n += k;
        if (k == 0) std::this_thread::yield();
      }
      got[static_cast<std::size_t>(r)] = n + (sum & 0);
      end[static_cast<std::size_t>(r)] = monotonic_ns();
    });
  }
  for (int p = 0; p < a.producers; ++p) {
    threads.emplace_back([&, p] {
      pin(a.readers + p);
      std::vector<moodycamel::ProducerToken> toks;
      for (auto& q : queues) toks.emplace_back(*q);
      std::vector<Item> items(static_cast<std::size_t>(std::max(a.batch, 1)));
      for (auto& it : items) std::memset(it.bytes, 1, a.payload);
      while (!go.load()) std::this_thread::yield();
      for (std::uint64_t i = 0; i < per_producer;) {
        const std::size_t k = std::min<std::uint64_t>(static_cast<std::uint64_t>(a.batch), per_producer - i);
        for (std::size_t q = 0; q < queues.size(); ++q) {
          // enqueue (not try_enqueue): may allocate, never starves a producer.
          if (bulk) {
            queues[q]->enqueue_bulk(toks[q], items.data(), k);
          } else {
            for (std::size_t j = 0; j < k; ++j) queues[q]->enqueue(toks[q], items[j]);
          }
        }
        i += k;
      }
    });
  }
  start = monotonic_ns();
  go.store(1);
  for (auto& t : threads) t.join();
  double sum = 0;
  *complete = true;
  for (int r = 0; r < a.readers; ++r) {
    sum += static_cast<double>(got[static_cast<std::size_t>(r)]) /
           (static_cast<double>(end[static_cast<std::size_t>(r)] - start) / 1e9);
    if (got[static_cast<std::size_t>(r)] != total) *complete = false;
  }
  return sum / a.readers;
}

// Items exactly as large as the payload rounded up to 32/64/128/256 bytes.
double bench_moodycamel(const Args& a, bool* complete, bool bulk) {
  if (a.payload <= 32) return bench_moodycamel_items<Item<32>>(a, complete, bulk);
  if (a.payload <= 64) return bench_moodycamel_items<Item<64>>(a, complete, bulk);
  if (a.payload <= 128) return bench_moodycamel_items<Item<128>>(a, complete, bulk);
  return bench_moodycamel_items<Item<256>>(a, complete, bulk);
}

double bench_unix_socket(const Args& a_in, bool* complete) {
  // One stream socketpair per (producer, reader); B samples per write. A
  // tenth of the samples: it is a rate, and the socket is the slow one.
  Args a = a_in;
  a.samples = std::max<std::uint64_t>(a.samples / 10, static_cast<std::uint64_t>(a.producers));
  const std::uint64_t per_producer = a.samples / static_cast<std::uint64_t>(a.producers);
  const std::uint64_t total = per_producer * static_cast<std::uint64_t>(a.producers);
  std::vector<std::vector<int>> prod_fd(static_cast<std::size_t>(a.producers)),
      read_fd(static_cast<std::size_t>(a.readers));
  for (int p = 0; p < a.producers; ++p) {
    for (int r = 0; r < a.readers; ++r) {
      int sv[2];
      ::socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
      prod_fd[static_cast<std::size_t>(p)].push_back(sv[0]);
      read_fd[static_cast<std::size_t>(r)].push_back(sv[1]);
    }
  }
  Shared* sh = shared_block();
  std::vector<pid_t> pids;
  for (int r = 0; r < a.readers; ++r) {
    pids.push_back(spawn([&, r] {
      pin(r);
      auto& fds = read_fd[static_cast<std::size_t>(r)];
      std::vector<pollfd> pfd;
      for (int fd : fds) pfd.push_back({fd, POLLIN, 0});
      std::vector<char> buf(1 << 16);
      std::uint64_t bytes = 0;
      const std::uint64_t want = total * a.payload;
      sh->ready.fetch_add(1);
      while (bytes < want) {
        ::poll(pfd.data(), pfd.size(), 1000);
        for (auto& p : pfd) {
          if (p.revents & POLLIN) {
            const ssize_t n = ::read(p.fd, buf.data(), buf.size());
            if (n > 0) bytes += static_cast<std::uint64_t>(n);
          }
        }
      }
      sh->t_end[r].store(monotonic_ns());
      sh->received[r].store(bytes / a.payload);
      return 0;
    }));
  }
  for (int p = 0; p < a.producers; ++p) {
    pids.push_back(spawn([&, p] {
      pin(a.readers + p);
      std::vector<char> buf(a.payload * static_cast<std::size_t>(a.batch), 1);
      sh->ready.fetch_add(1);
      while (!sh->go.load()) std::this_thread::yield();
      for (std::uint64_t i = 0; i < per_producer;) {
        const std::uint64_t k = std::min<std::uint64_t>(static_cast<std::uint64_t>(a.batch), per_producer - i);
        for (int fd : prod_fd[static_cast<std::size_t>(p)]) {
          std::size_t off = 0, len = k * a.payload;
          while (off < len) {
            const ssize_t n = ::write(fd, buf.data() + off, len - off);
            if (n <= 0) return 3;
            off += static_cast<std::size_t>(n);
          }
        }
        i += k;
      }
      return 0;
    }));
  }
  start_when_ready(sh, a.readers + a.producers);
  wait_all(pids);
  for (auto& v : prod_fd)
    for (int fd : v) ::close(fd);
  for (auto& v : read_fd)
    for (int fd : v) ::close(fd);
  return per_reader_rate(sh, a.readers, total, complete);
}

double bench_memcpy_gbps() {
  std::vector<char> src(64 << 20, 1), dst(64 << 20);
  const double t0 = now_s();
  int reps = 0;
  while (now_s() - t0 < 0.5) {
    std::memcpy(dst.data(), src.data(), src.size());
    ++reps;
  }
  const double secs = now_s() - t0;
  volatile char sink = dst[static_cast<std::size_t>(reps) % dst.size()];
  (void)sink;
  return static_cast<double>(src.size()) * reps / secs / 1e9;
}

void throughput(const Args& a) {
  bool ok_ring = false, ok_mc = false, ok_unix = false;
  const double r = bench_ring(a, &ok_ring);
  const double m = bench_moodycamel(a, &ok_mc, false);
  bool ok_bulk = true;
  const double mb = a.batch > 1 ? bench_moodycamel(a, &ok_bulk, true) : 0;
  const double u = bench_unix_socket(a, &ok_unix);
  const double gbps = bench_memcpy_gbps();
  const double memcpy_rate = gbps * 1e9 / static_cast<double>(a.payload);
  std::printf("ring P=%d R=%d B=%d payload=%zu samples=%llu lane_bytes=%llu samples_per_s=%.0f%s\n", a.producers,
              a.readers, a.batch, a.payload, static_cast<unsigned long long>(a.samples),
              static_cast<unsigned long long>(a.lane_bytes), r, ok_ring ? "" : " INCOMPLETE");
  std::printf("| transport (P=%d R=%d B=%d, %zu B) | samples/s per reader | ring / it |\n", a.producers, a.readers,
              a.batch, a.payload);
  std::printf("|---|---:|---:|\n");
  std::printf("| ringpipe ring (processes) | %.0f | 1.00 |\n", r);
  std::printf("| moodycamel::ConcurrentQueue, enqueue/try_dequeue per sample (threads) | %.0f%s | %.2f |\n", m,
              ok_mc ? "" : " INCOMPLETE", r / m);
  if (a.batch > 1) {
    std::printf("| moodycamel::ConcurrentQueue, enqueue_bulk/try_dequeue_bulk of %d (threads) | %.0f%s | %.2f |\n",
                a.batch, mb, ok_bulk ? "" : " INCOMPLETE", r / mb);
  }
  std::printf("| Unix stream socket (processes) | %.0f%s | %.2f |\n", u, ok_unix ? "" : " INCOMPLETE", r / u);
  std::printf("| memcpy %.1f GB/s as %zu-byte samples | %.0f | %.3f |\n", gbps, a.payload, memcpy_rate,
              r / memcpy_rate);
}

void latency(const Args& a) {
  for (bool sleeping : {false, true}) {
    const std::string path = a.dir + "/latency";
    std::filesystem::remove(path);
    ring::RingOptions o;
    o.lane_capacity_bytes = 1u << 20;
    o.lanes = 1;
    auto rg = ring::Ring::create(path, o);
    Shared* sh = shared_block();
    const int n = 200'000;
    int pipefd[2];
    if (::pipe(pipefd) != 0) return;
    const pid_t reader = spawn([&] {
      pin(0);
      auto r2 = ring::Ring::open(path);
      auto rd = ring::Reader::attach(*r2, "lat");
      std::vector<std::int64_t> lat;
      lat.reserve(n);
      sh->ready.store(1);
      while (static_cast<int>(lat.size()) < n) {
        const std::size_t got = rd->poll([&](const ring::RecordView& v) {
          std::int64_t t;
          std::memcpy(&t, v.payload.data(), sizeof t);
          lat.push_back(monotonic_ns() - t);
        });
        if (got == 0 && sleeping) rd->wait(std::chrono::milliseconds(100));
      }
      std::sort(lat.begin(), lat.end());
      std::int64_t q[3] = {lat[lat.size() / 2], lat[lat.size() * 99 / 100], lat[lat.size() * 999 / 1000]};
      if (::write(pipefd[1], q, sizeof q) != sizeof q) return 1;
      return 0;
    });
    while (!sh->ready.load()) std::this_thread::yield();
    pin(1);
    auto pr = ring::Producer::attach(*rg);
    // Paced so a sleeping reader really goes to sleep between samples.
    const std::int64_t gap_ns = sleeping ? 50'000 : 2'000;
    std::int64_t next = monotonic_ns();
    for (int i = 0; i < n; ++i) {
      while (monotonic_ns() < next) {
      }
      next += gap_ns;
      ring::WriteStatus st;
      auto dst = pr->claim(a.payload, std::chrono::seconds(5), &st);  // block: wait for a slow reader
      if (st != ring::WriteStatus::kOk) {
        std::fprintf(stderr, "latency: claim failed\n");
        break;
      }
      const std::int64_t t = monotonic_ns();
      std::memcpy(dst.data(), &t, sizeof t);
      pr->finish_and_publish(1, a.payload);
    }
    std::int64_t q[3];
    if (::read(pipefd[0], q, sizeof q) != sizeof q) return;
    ::waitpid(reader, nullptr, 0);
    std::printf("latency reader=%s samples=%d gap=%lldns p50=%lldns p99=%lldns p99.9=%lldns\n",
                sleeping ? "sleeping(futex)" : "spinning", n, static_cast<long long>(gap_ns),
                static_cast<long long>(q[0]), static_cast<long long>(q[1]), static_cast<long long>(q[2]));
    std::filesystem::remove(path);
  }
}

void attach_time(const Args& a) {
  const std::string path = a.dir + "/attach1g";
  std::filesystem::remove(path);
  ring::RingOptions o;
  o.lane_capacity_bytes = 128u << 20;
  o.lanes = 8;  // 1 GiB of data
  const double t0 = now_s();
  auto rg = ring::Ring::create(path, o);
  if (!rg) {
    std::printf("attach: %s\n", rg.error().message().c_str());
    return;
  }
  const double create_s = now_s() - t0;
  std::vector<double> times;
  for (int i = 0; i < 200; ++i) {
    const std::int64_t s = monotonic_ns();
    auto r2 = ring::Ring::open(path);
    auto rd = ring::Reader::attach(*r2, "attach", ring::ReaderOptions{ring::StartAt::kLatest, false, {}});
    times.push_back(static_cast<double>(monotonic_ns() - s) / 1e3);
  }
  std::sort(times.begin(), times.end());
  std::printf(
      "attach ring=1GiB create=%.0fms open+attach p50=%.1fus max=%.1fus (baseline: open+mmap+munmap of the same file "
      "p50=",
      create_s * 1e3, times[times.size() / 2], times.back());
  std::vector<double> base;
  for (int i = 0; i < 200; ++i) {
    const std::int64_t s = monotonic_ns();
    const int fd = ::open(path.c_str(), O_RDONLY);
    void* p = ::mmap(nullptr, 1ULL << 30, PROT_READ, MAP_SHARED, fd, 0);
    ::munmap(p, 1ULL << 30);
    ::close(fd);
    base.push_back(static_cast<double>(monotonic_ns() - s) / 1e3);
  }
  std::sort(base.begin(), base.end());
  std::printf("%.1fus)\n", base[base.size() / 2]);
  std::filesystem::remove(path);
}

std::uint64_t pss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("Pss:", 0) == 0) return std::stoull(line.substr(4));
  }
  return 0;
}

void pss(const Args& a) {
  const std::string path = a.dir + "/pss";
  std::filesystem::remove(path);
  ring::RingOptions o;
  o.lane_capacity_bytes = 256u << 20;
  o.lanes = 1;
  o.overflow = Overflow::kOverwrite;
  const std::uint64_t ring_kib = (256u << 20) / 1024;
  {
    auto rg = ring::Ring::create(path, o);
    auto pr = ring::Producer::attach(*rg);
    std::vector<std::byte> rec(4000, std::byte{7});
    for (std::uint64_t w = 0; w < (256u << 20) / 4016; ++w) {
      if (pr->try_write(1, rec) != ring::WriteStatus::kOk) break;
    }
  }
  Shared* sh = shared_block();
  std::vector<pid_t> pids;
  for (int r = 0; r < 8; ++r) {
    pids.push_back(spawn([&, r] {
      auto rg = ring::Ring::open(path);
      auto rd = ring::Reader::attach(*rg, "pss" + std::to_string(r));
      std::uint64_t sum = 0;
      while (rd->poll([&](const ring::RecordView& v) { sum += static_cast<std::uint8_t>(v.payload[100]); }) > 0) {
      }
      sh->received[r].store(sum);
      sh->ready.fetch_add(1);
      while (!sh->go.load()) ::usleep(1000);
      return 0;
    }));
  }
  while (sh->ready.load() < 8) ::usleep(1000);
  std::uint64_t total = 0;
  for (pid_t p : pids) total += pss_kib(p);
  sh->go.store(1);
  wait_all(pids);
  std::printf("pss readers=8 ring=%lluKiB sum_pss=%lluKiB ratio=%.3f (each reader read the whole ring)\n",
              static_cast<unsigned long long>(ring_kib), static_cast<unsigned long long>(total),
              static_cast<double>(total) / static_cast<double>(ring_kib));
  (void)a;
  std::filesystem::remove(path);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (k == "--producers")
      a.producers = std::stoi(val());
    else if (k == "--readers")
      a.readers = std::stoi(val());
    else if (k == "--batch")
      a.batch = std::stoi(val());
    else if (k == "--payload")
      a.payload = std::stoul(val());
    else if (k == "--samples")
      a.samples = std::stoull(val());
    else if (k == "--mode")
      a.mode = val();
    else if (k == "--dir")
      a.dir = val();
    else if (k == "--lane-bytes")
      a.lane_bytes = std::stoull(val());
    else if (k == "--spin")
      a.spin = true;
    else {
      std::fprintf(stderr,
                   "usage: ring_bench [--producers P] [--readers R] [--batch B] [--payload BYTES] "
                   "[--samples N] [--mode throughput|latency|attach|pss|all] [--dir DIR] [--lane-bytes POW2]\n");
      return 2;
    }
  }
  if (a.payload < 8 || a.payload > 256 || a.producers < 1 || a.producers > 64 || a.readers < 1 || a.readers > 16 ||
      a.batch < 1) {
    std::fprintf(stderr, "ring_bench: payload 8..256, producers 1..64, readers 1..16, batch >= 1\n");
    return 2;
  }
  std::filesystem::create_directories(a.dir);
  if (a.mode == "ring") {  // the ring alone, for profiling
    bool ok = false;
    const double rate = bench_ring(a, &ok);
    std::printf("ring P=%d R=%d B=%d samples_per_s=%.0f%s\n", a.producers, a.readers, a.batch, rate,
                ok ? "" : " INCOMPLETE");
  }
  if (a.mode == "throughput" || a.mode == "all") throughput(a);
  if (a.mode == "latency" || a.mode == "all") latency(a);
  if (a.mode == "attach" || a.mode == "all") attach_time(a);
  if (a.mode == "pss" || a.mode == "all") pss(a);
  std::filesystem::remove_all(a.dir);
  return 0;
}
