// Chaos: the real `ringpipe run` supervising a whole pipeline (TCP StatsD
// source -> `block` ring raw -> aggregate -> `block` ring metrics ->
// Prometheus exporter) under steady TCP load, while the test kills a random
// component with SIGKILL at random moments, then stops the source and the
// exporter with SIGSTOP for longer than every timeout. At the end /metrics
// must hold exactly what entered the raw ring, no reader may have seen a
// corrupt, torn or lapped record, every recovery must be in the supervisor's
// log, and the supervisor must stop on SIGTERM with exit code 0. Every wait
// is bounded.
//
// The seed comes from RINGPIPE_CHAOS_SEED when set (to replay a failure),
// else from std::random_device; it is printed first.
//
// What the sender can know. StatsD over TCP has no acknowledgement: send()
// returning means the kernel took the bytes, not that the source read them.
// A source killed with SIGKILL loses whatever its sockets held (kernel
// buffers, bytes read but not yet written to the ring), and the sender cannot
// tell how much. So the ground truth of accepted samples is the raw ring
// itself, counted by a durable reader (SampleAudit) that gates the producers
// like the processor does, and the test asserts:
//   * /metrics == raw-ring audit, exactly (nothing accepted is lost or
//     counted twice, whatever was killed);
//   * clean <= audit <= attempted, where `attempted` is every line the sender
//     handed to the kernel and `clean` the lines of connections whose whole
//     life (connect .. the source closing it after our FIN) overlapped no
//     source kill: those must all arrive, so any loss is confined to
//     connections a kill -9 of the TCP listener cut.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <random>
#include <thread>

#include "e2e_util.hpp"
#include "prometheus_server.hpp"
#include "ringpipe/ring/ring.hpp"
#include "status_file.hpp"

namespace ringpipe::apps {
namespace {

using namespace std::chrono_literals;

constexpr int kKills = 24;
constexpr std::size_t kBatchLines = 100;
constexpr int kBatchesPerConnection = 20;
// Longer than every timeout of the pipeline below (reader_timeout 3s,
// write_timeout 4s, idle_timeout 3s, the supervisor's 2s quick-failure window).
constexpr auto kStopFor = 5s;

bool pid_alive(std::uint32_t pid) { return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) == 0; }

std::int64_t realtime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct Kill {
  std::string name;
  std::string kind;
  std::uint32_t old_pid = 0;
  std::uint32_t new_pid = 0;
};

class Chaos : public ::testing::Test {
 protected:
  std::string pipeline_text() const {
    return "pipeline: chaos\nrun_dir: " + dir_.path().string() + R"(
rings:
  raw: {size: 16MiB, lanes: 4, overflow: block, reader_timeout: 3s}
  metrics: {size: 8MiB, lanes: 4, overflow: block, reader_timeout: 3s}
sources:
  statsd: {type: statsd, listen: [tcp://127.0.0.1:)" +
           std::to_string(port_) + R"(], output: raw, write_timeout: 4s, idle_timeout: 3s}
processors:
  aggregate: {type: aggregate, input: raw, output: metrics, flush_interval: 100ms}
exporters:
  prometheus: {type: prometheus, input: metrics, listen: 127.0.0.1:)" +
           std::to_string(web_port_) + "}\n";
  }

  // The sum of every series of `name` on /metrics; nullopt when the exporter
  // does not answer or has no such series (as in supervisor_e2e_test.cpp).
  std::optional<double> scraped(const std::string& name) const {
    const auto [code, body] = exporters::testing::http_get(web_port_, "/metrics", "", 2s);
    if (code != 200) return std::nullopt;
    return e2e::exposition_sum(body, name);
  }

  std::optional<SupervisorStatus> status() const {
    auto s = read_status_file(status_file_path(dir_.path().string(), "chaos"));
    if (!s) return std::nullopt;
    return *s;
  }
  const ComponentStatus* find(const SupervisorStatus& s, const std::string& name) const {
    for (const auto& c : s.components)
      if (c.name == name) return &c;
    return nullptr;
  }
  // The pid of a running component, 0 when it is not running.
  std::uint32_t pid_of(const std::string& name) const {
    auto s = status();
    if (!s) return 0;
    const ComponentStatus* c = find(*s, name);
    return c && c->state == ComponentState::kRunning && pid_alive(c->pid) ? c->pid : 0;
  }
  std::string ring(const std::string& name) const { return (dir_.path() / "chaos" / name).string(); }

  // Rotates connections of kBatchesPerConnection batches; see the file comment.
  void start_load() {
    load_ = std::thread([this] {
      const std::string batch = e2e::lines("chaos.count:1|c", kBatchLines);
      while (!stop_.load()) {
        const std::uint64_t epoch = source_kill_epoch_.load();
        std::uint64_t on_connection = 0;
        bool ok = true;
        {
          e2e::TcpSender s(port_);
          if (!s.connect(2s)) {
            std::this_thread::sleep_for(5ms);
            continue;
          }
          for (int b = 0; b < kBatchesPerConnection && !stop_.load(); ++b) {
            // Counted before the call: a failed send may still have delivered part of it.
            attempted_ += kBatchLines;
            on_connection += kBatchLines;
            if (!s.send(batch)) {
              ok = false;
              break;
            }
            std::this_thread::sleep_for(1ms);  // about 100k lines/s
          }
          if (ok) s.finish();  // waits (at most 5 s) for the source to close: it read everything
        }
        const bool clean = ok && epoch % 2 == 0 && source_kill_epoch_.load() == epoch;
        (clean ? clean_ : suspect_) += on_connection;
        connections_ += 1;
      }
    });
  }
  void stop_load() {
    stop_ = true;
    if (load_.joinable()) load_.join();
  }
  void TearDown() override {
    for (const std::uint32_t p : stopped_pids_) ::kill(static_cast<pid_t>(p), SIGCONT);
    stop_load();
  }

  // Every reader of the ring: no corrupt, torn or lapped record, no eviction;
  // every lane: nothing dropped.
  void expect_ring_clean(const std::string& name) const {
    auto r = ring::Ring::open(ring(name));
    ASSERT_TRUE(r) << r.error().message();
    const ring::RingStats st = r->stats();
    for (const ring::ReaderStats& rd : st.readers) {
      EXPECT_EQ(rd.corrupt_records, 0u) << name << " reader " << rd.name;
      EXPECT_EQ(rd.torn_records, 0u) << name << " reader " << rd.name;
      EXPECT_EQ(rd.lapped_records, 0u) << name << " reader " << rd.name;
      EXPECT_EQ(rd.evictions, 0u) << name << " reader " << rd.name;
    }
    for (const ring::LaneStats& l : st.lane) EXPECT_EQ(l.dropped_records, 0u) << name << " lane " << l.lane;
  }

  testing::ScratchDir dir_;
  std::uint16_t port_ = e2e::free_tcp_port();
  std::uint16_t web_port_ = e2e::free_tcp_port();
  std::unique_ptr<e2e::Proc> supervisor_;
  std::thread load_;
  std::atomic<bool> stop_{false};
  // Odd while a kill of the source is in progress (from just before the
  // SIGKILL until the supervisor reports its successor running, i.e. the dead
  // one was reaped and its sockets are closed); +2 for each kill.
  std::atomic<std::uint64_t> source_kill_epoch_{0};
  std::atomic<std::uint64_t> attempted_{0}, clean_{0}, suspect_{0}, connections_{0};
  std::vector<std::uint32_t> stopped_pids_;  // resumed by TearDown if a check failed while they were stopped
};

TEST_F(Chaos, RandomKillsAndStoppedProcessesLoseNothingTheRingAcceptedAndEveryRecoveryIsLogged) {
  std::uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("RINGPIPE_CHAOS_SEED")) seed = std::strtoull(s, nullptr, 10);
  std::cout << "chaos seed " << seed << " (replay: RINGPIPE_CHAOS_SEED=" << seed << ")" << std::endl;
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);

  const std::string file = dir_.file("chaos.yaml");
  e2e::write_text(file, pipeline_text());
  // Deaths within 2 s of a start are "quick" and the supervisor gives up after
  // max-quick-failures of them in a row; random kills hit fresh processes too,
  // and giving up is not what this test is about (supervisor_e2e_test is).
  supervisor_ = std::make_unique<e2e::Proc>(std::vector<std::string>{"run", file, "--max-quick-failures", "1000"},
                                            dir_.file("sup.out"), dir_.file("sup.err"));
  const std::vector<std::string> names = {"statsd", "aggregate", "prometheus"};
  ASSERT_TRUE(testing::wait_until(
      [&] { return std::all_of(names.begin(), names.end(), [&](const auto& n) { return pid_of(n) != 0; }); }, 15s))
      << supervisor_->err();

  // Attached before the first sample: under `block` it sees every record the ring accepts.
  auto audit = e2e::SampleAudit::attach(ring("raw"), "chaos.count");
  ASSERT_TRUE(audit);
  start_load();
  ASSERT_TRUE(testing::wait_until([&] { return scraped("chaos_count").value_or(0) > 5'000; }, 20s))
      << supervisor_->err();

  // kill -9 a random running component at random moments.
  std::vector<Kill> kills;
  std::uniform_int_distribution<int> pause_ms(100, 1200);
  for (int i = 0; i < kKills; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
    const auto s = status();
    ASSERT_TRUE(s);
    std::vector<const ComponentStatus*> candidates;
    for (const auto& c : s->components)
      if (c.state == ComponentState::kRunning && pid_alive(c.pid)) candidates.push_back(&c);
    ASSERT_FALSE(candidates.empty()) << supervisor_->err();
    const ComponentStatus& victim =
        *candidates[std::uniform_int_distribution<std::size_t>(0, candidates.size() - 1)(rng)];
    Kill k{victim.name, std::string(component_kind_name(victim.kind)), victim.pid, 0};
    // Each death within 2 s of a start doubles the restart backoff (100 ms,
    // 200 ms, ...): after two such deaths in a row, let the victim pass 2 s of
    // uptime first, so its next death resets the backoff and no restart waits
    // longer than 200 ms.
    if (victim.quick_failures >= 2) {
      const std::int64_t wait_ns = victim.started_ns + 2'100'000'000 - realtime_ns();
      if (wait_ns > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait_ns));
      ASSERT_EQ(pid_of(k.name), k.old_pid) << supervisor_->err();
    }
    const bool source = victim.kind == ComponentKind::kSource;
    if (source) source_kill_epoch_ += 1;
    ASSERT_EQ(::kill(static_cast<pid_t>(k.old_pid), SIGKILL), 0);
    ASSERT_TRUE(testing::wait_until(
        [&] {
          k.new_pid = pid_of(k.name);
          return k.new_pid != 0 && k.new_pid != k.old_pid;
        },
        10s))
        << "kill " << i << " of " << k.name << " (pid " << k.old_pid << "): not back within 10s\n"
        << supervisor_->err();
    if (source) source_kill_epoch_ += 1;
    kills.push_back(k);
  }
  // Still flowing after the last kill.
  const std::uint64_t after_kills = audit->count();
  ASSERT_TRUE(testing::wait_until([&] { return audit->count() > after_kills + 5'000; }, 20s));

  // SIGSTOP the source (a producer) and the exporter (a reader) for longer
  // than every timeout, then resume them: neither is declared dead, evicted
  // or restarted, and what the source holds arrives intact.
  {
    const std::uint32_t source = pid_of("statsd"), exporter = pid_of("prometheus");
    ASSERT_NE(source, 0u);
    ASSERT_NE(exporter, 0u);
    // A component the kills above restarted may still be attaching (slow on
    // a loaded machine): stop the processes only once the source owns a lane
    // and the exporter's reader slot is its own, so the checks below see the
    // processes that were stopped.
    ASSERT_TRUE(testing::wait_until(
        [&] {
          auto raw = ring::Ring::open(ring("raw"));
          auto metrics = ring::Ring::open(ring("metrics"));
          if (!raw || !metrics) return false;
          const auto lanes = raw->stats().lane;
          const auto readers = metrics->stats().readers;
          return std::any_of(lanes.begin(), lanes.end(),
                             [&](const ring::LaneStats& l) { return l.owned && l.owner_pid == source; }) &&
                 std::any_of(readers.begin(), readers.end(), [&](const ring::ReaderStats& r) {
                   return r.name == "prometheus" && r.alive && r.state == ring::ReaderStats::State::kActive &&
                          r.pid == exporter;
                 });
        },
        20s))
        << "the source's lane or the exporter's reader slot never showed the current pids";
    const auto before = status();
    ASSERT_TRUE(before);
    stopped_pids_ = {source, exporter};
    for (const std::uint32_t p : stopped_pids_) ASSERT_EQ(::kill(static_cast<pid_t>(p), SIGSTOP), 0);
    std::this_thread::sleep_for(kStopFor);
    // Still its lane's owner and its reader slot's: nothing is reclaimed from a live process.
    auto raw = ring::Ring::open(ring("raw"));
    auto metrics = ring::Ring::open(ring("metrics"));
    ASSERT_TRUE(raw && metrics);
    const auto lanes = raw->stats().lane;
    EXPECT_TRUE(std::any_of(lanes.begin(), lanes.end(),
                            [&](const ring::LaneStats& l) { return l.owned && l.owner_pid == source; }));
    const auto readers = metrics->stats().readers;
    EXPECT_TRUE(std::any_of(readers.begin(), readers.end(), [&](const ring::ReaderStats& r) {
      return r.name == "prometheus" && r.alive && r.state == ring::ReaderStats::State::kActive && r.pid == exporter;
    }));
    const auto s = status();
    ASSERT_TRUE(s);
    for (const char* n : {"statsd", "prometheus"}) {
      EXPECT_EQ(find(*s, n)->pid, find(*before, n)->pid) << n;
      EXPECT_EQ(find(*s, n)->restarts, find(*before, n)->restarts) << n;
    }
    for (const std::uint32_t p : stopped_pids_) ASSERT_EQ(::kill(static_cast<pid_t>(p), SIGCONT), 0);
    stopped_pids_.clear();
    const std::uint64_t resumed = audit->count();
    ASSERT_TRUE(testing::wait_until([&] { return audit->count() > resumed + 5'000; }, 20s)) << supervisor_->err();
    EXPECT_EQ(pid_of("statsd"), source);
    EXPECT_EQ(pid_of("prometheus"), exporter);
  }

  stop_load();
  // Once everything drained: /metrics holds exactly what entered the raw ring.
  std::uint64_t audited = 0;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        audited = audit->count();
        return scraped("chaos_count") == static_cast<double>(audited);
      },
      30s))
      << "/metrics " << scraped("chaos_count").value_or(-1) << " vs raw ring " << audit->count();
  std::this_thread::sleep_for(300ms);  // nothing arrives late
  EXPECT_EQ(audit->count(), audited);
  EXPECT_EQ(scraped("chaos_count"), static_cast<double>(audited));
  EXPECT_FALSE(audit->lapped());

  // The sender's side (see the file comment).
  std::map<std::string, int> killed;
  for (const Kill& k : kills) ++killed[k.name];
  std::cout << "kills " << kills.size() << " (statsd " << killed["statsd"] << ", aggregate " << killed["aggregate"]
            << ", prometheus " << killed["prometheus"] << "), connections " << connections_.load()
            << ", lines attempted " << attempted_.load() << " (clean " << clean_.load()
            << ", on connections a source kill cut " << suspect_.load() << "), in the raw ring " << audited
            << std::endl;
  EXPECT_LE(audited, attempted_.load());
  EXPECT_GE(audited, clean_.load());
  EXPECT_GT(clean_.load(), attempted_.load() / 2);

  // Nothing corrupt, torn, lapped, evicted or dropped anywhere.
  expect_ring_clean("raw");
  expect_ring_clean("metrics");

  // Each kill: a death and a restart in the supervisor's log, and in its restart counts.
  const std::string err = supervisor_->err();
  std::map<std::string, std::uint32_t> per_component;
  for (const Kill& k : kills) {
    ++per_component[k.name];
    EXPECT_NE(err.find("component " + k.name + " (pid " + std::to_string(k.old_pid) + ") died: killed by signal 9"),
              std::string::npos)
        << k.name << " " << k.old_pid << "\n"
        << err;
    EXPECT_NE(err.find("component " + k.name + " (" + k.kind + "): restarted, pid " + std::to_string(k.new_pid)),
              std::string::npos)
        << k.name << " " << k.new_pid << "\n"
        << err;
  }
  const auto final_status = status();
  ASSERT_TRUE(final_status);
  for (const auto& n : names) EXPECT_EQ(find(*final_status, n)->restarts, per_component[n]) << n;

  // SIGTERM: drains and exits 0, bounded; no component outlives it.
  std::vector<std::uint32_t> pids;
  for (const auto& n : names) pids.push_back(pid_of(n));
  supervisor_->signal(SIGTERM);
  EXPECT_EQ(supervisor_->wait(30s), 0) << supervisor_->err();
  for (const std::uint32_t p : pids) EXPECT_FALSE(pid_alive(p)) << p;
  EXPECT_EQ(audit->count(), audited);
}

}  // namespace
}  // namespace ringpipe::apps
