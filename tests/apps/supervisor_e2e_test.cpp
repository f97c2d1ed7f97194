// `ringpipe run` end to end: the real binary supervising real component
// processes on loopback, with the output ring read directly by the test.

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include <mosquitto.h>

#include "components.hpp"
#include "e2e_util.hpp"
#include "mosquitto_broker.hpp"
#include "prometheus_server.hpp"
#include "status_file.hpp"

namespace ringpipe::apps {
namespace {

using namespace std::chrono_literals;

bool pid_alive(std::uint32_t pid) { return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) == 0; }

// A killed component is back (and an exporter serves its whole state) within
// 1 s; sanitizer builds run the real binary several times slower.
constexpr std::chrono::milliseconds kBackWithin{testing::under_sanitizer() ? 5000 : 1000};

class SupervisorE2e : public ::testing::Test {
 protected:
  std::string pipeline_text(const std::string& processor_extra = "") const {
    return "pipeline: t\nrun_dir: " + dir_.path().string() + R"(
rings:
  raw: {size: 4MiB, lanes: 4, overflow: block, reader_timeout: 5s}
  metrics: {size: 4MiB, lanes: 4, overflow: block}
sources:
  statsd: {type: statsd, listen: [tcp://127.0.0.1:)" +
           std::to_string(port_) + R"(], output: raw}
processors:
  aggregate: {type: aggregate, input: raw, output: metrics, flush_interval: 100ms)" +
           processor_extra + R"(}
exporters:
  prometheus: {type: prometheus, input: metrics, listen: 127.0.0.1:)" +
           std::to_string(web_port_) + "}\n";
  }

  // The sum of every series of `name` on the exporter's /metrics, nullopt
  // when it does not answer or has no such series.
  std::optional<double> scraped(const std::string& name) const { return e2e::scraped_sum(web_port_, name); }

  // Starts the supervisor and waits until every component runs.
  void start(std::vector<std::string> args, const std::string& pipeline = "t") {
    pipeline_ = pipeline;
    supervisor_ = std::make_unique<e2e::Proc>(args, dir_.file("sup.out"), dir_.file("sup.err"));
    ASSERT_TRUE(testing::wait_until([&] { return pid_of("statsd") && pid_of("aggregate"); }, 10s))
        << supervisor_->err();
  }
  void start_file(const std::string& text) {
    e2e::write_text(file_, text);
    start({"run", file_});
  }

  std::optional<SupervisorStatus> status() const {
    auto s = read_status_file(status_file_path(dir_.path().string(), pipeline_));
    if (!s) return std::nullopt;
    return *s;
  }
  // The pid of a running component, 0 when it is not running.
  std::uint32_t pid_of(const std::string& name) const {
    auto s = status();
    if (!s) return 0;
    for (const auto& c : s->components)
      if (c.name == name && c.state == ComponentState::kRunning && pid_alive(c.pid)) return c.pid;
    return 0;
  }
  std::string ring(const std::string& name) const { return (dir_.path() / pipeline_ / name).string(); }

  // Kills `name` with SIGKILL and returns how long until a new pid ran.
  std::chrono::milliseconds kill_and_time_restart(const std::string& name) {
    const std::uint32_t old = pid_of(name);
    EXPECT_NE(old, 0u);
    const auto t0 = std::chrono::steady_clock::now();
    ::kill(static_cast<pid_t>(old), SIGKILL);
    EXPECT_TRUE(testing::wait_until(
        [&] {
          const std::uint32_t p = pid_of(name);
          return p != 0 && p != old;
        },
        5s));
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  }

  // Sends `line` continuously from a thread (reconnecting) until stop_load().
  void start_load(const std::string& line) {
    load_ = std::thread([this, line] {
      e2e::TcpSender s(port_);
      const std::string batch = e2e::lines(line, 100);
      while (!stop_.load()) {  // about 100k samples/s
        if (!s.send(batch)) std::this_thread::sleep_for(5ms);
        std::this_thread::sleep_for(1ms);
      }
      s.finish();
    });
  }
  void stop_load() {
    stop_ = true;
    if (load_.joinable()) load_.join();
  }
  void TearDown() override { stop_load(); }
  // After stop_load(), datagrams still in the socket keep entering the raw
  // ring for a moment: a comparison with the audit made before they are all
  // in can meet an equal value mid-stream. Waits until the audit's count has
  // not moved for 300 ms (10 s at most).
  static void wait_audit_settled(e2e::SampleAudit& audit) {
    std::uint64_t last = audit.count();
    auto still_since = std::chrono::steady_clock::now();
    const auto until = still_since + 10s;
    while (std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(20ms);
      const std::uint64_t now = audit.count();
      if (now != last) {
        last = now;
        still_since = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - still_since >= 300ms) {
        return;
      }
    }
    ADD_FAILURE() << "the raw ring kept growing 10 s after the load stopped";
  }

  testing::ScratchDir dir_;
  std::uint16_t port_ = e2e::free_tcp_port();
  std::uint16_t web_port_ = e2e::free_tcp_port();
  std::string file_ = dir_.file("p.yaml");
  std::string pipeline_ = "t";
  std::unique_ptr<e2e::Proc> supervisor_;
  std::thread load_;
  std::atomic<bool> stop_{false};
};

TEST_F(SupervisorE2e, CountsEveryIncrementExactlyAndStatShowsRingsAndComponents) {
  start_file(pipeline_text());
  auto totals = e2e::MetricTotals::attach(ring("metrics"));
  ASSERT_TRUE(totals);
  constexpr int kN = 20'000;
  e2e::TcpSender s(port_);
  ASSERT_TRUE(s.send(e2e::lines("e2e.count:1|c", kN)));
  s.finish();
  EXPECT_TRUE(testing::wait_until([&] { return totals->total("e2e_count") == kN; }, 10s)) << totals->total("e2e_count");

  // Each child names itself for ps.
  const std::string cmdline = e2e::read_text("/proc/" + std::to_string(pid_of("statsd")) + "/cmdline");
  // The source is handed the socket the supervisor bound (--listen-fd KEY=FD).
  const std::string argv_head = std::string("ringpipe:statsd") + '\0' + "component" + '\0' + "statsd" + '\0' +
                                "--listen-fd" + '\0' + "statsd/tcp=";
  const std::string argv_tail = std::string("--config") + '\0' + file_ + '\0';
  EXPECT_EQ(cmdline.rfind(argv_head, 0), 0U) << cmdline;
  EXPECT_TRUE(cmdline.size() > argv_tail.size() &&
              cmdline.compare(cmdline.size() - argv_tail.size(), argv_tail.size(), argv_tail) == 0)
      << cmdline;
  EXPECT_EQ(e2e::read_text("/proc/" + std::to_string(pid_of("statsd")) + "/comm"), "ringpipe:statsd\n");

  const auto stat = e2e::run(dir_, {"stat", file_, "--once"});
  EXPECT_EQ(stat.code, 0) << stat.err;
  EXPECT_NE(stat.out.find("supervisor: running, pid " + std::to_string(supervisor_->pid())), std::string::npos)
      << stat.out;
  EXPECT_NE(stat.out.find("\nraw            block"), std::string::npos) << stat.out;
  EXPECT_NE(stat.out.find(" 4x1.0MiB  fill "), std::string::npos) << stat.out;
  EXPECT_NE(stat.out.find("\n  aggregate    active"), std::string::npos) << stat.out;
  EXPECT_NE(stat.out.find("\nmetrics "), std::string::npos) << stat.out;
  for (const char* c : {"statsd         source    running", "aggregate      processor running"})
    EXPECT_NE(stat.out.find(c), std::string::npos) << stat.out;
  // Each source's own counters, read from its stats segment.
  EXPECT_NE(stat.out.find("FLOW             lines/s samples/s"), std::string::npos) << stat.out;
  EXPECT_NE(stat.out.find("TROUBLE  none"), std::string::npos) << stat.out;

  supervisor_->signal(SIGTERM);
  EXPECT_EQ(supervisor_->wait(20s), 0) << supervisor_->err();
  // Readable with the supervisor gone.
  const auto after = e2e::run(dir_, {"stat", file_, "--once"});
  EXPECT_NE(after.out.find("supervisor: not running"), std::string::npos) << after.out;
  EXPECT_NE(after.out.find("stopped"), std::string::npos) << after.out;
}

TEST_F(SupervisorE2e, KilledSourceIsBackWithinASecondAndEverySampleTheRingAcceptedIsCounted) {
  start_file(pipeline_text());
  auto totals = e2e::MetricTotals::attach(ring("metrics"));
  auto audit = e2e::SampleAudit::attach(ring("raw"), "e2e.count");
  ASSERT_TRUE(totals && audit);
  start_load("e2e.count:1|c");
  ASSERT_TRUE(testing::wait_until([&] { return audit->count() > 10'000; }, 10s));
  EXPECT_LT(kill_and_time_restart("statsd"), kBackWithin);
  const std::uint64_t before = audit->count();
  ASSERT_TRUE(testing::wait_until([&] { return audit->count() > before + 10'000; }, 10s));  // the new one ingests
  stop_load();
  wait_audit_settled(*audit);
  // Equal once the processor caught up: what entered the ring is exactly what was counted.
  EXPECT_TRUE(
      testing::wait_until([&] { return totals->total("e2e_count") == static_cast<double>(audit->count()); }, 10s))
      << totals->total("e2e_count") << " vs " << audit->count();
  EXPECT_FALSE(audit->lapped());
  EXPECT_FALSE(totals->lapped());
  const auto s = status();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->components.at(0).restarts, 1u);
  EXPECT_EQ(s->components.at(0).last_exit, -SIGKILL);
  EXPECT_NE(supervisor_->err().find("component statsd (pid"), std::string::npos);
  EXPECT_NE(supervisor_->err().find("killed by signal 9"), std::string::npos);
}

TEST_F(SupervisorE2e, KilledProcessorIsBackWithinASecondAndItsTotalsStayExact) {
  start_file(pipeline_text());
  auto totals = e2e::MetricTotals::attach(ring("metrics"));
  auto audit = e2e::SampleAudit::attach(ring("raw"), "e2e.count");
  ASSERT_TRUE(totals && audit);
  start_load("e2e.count:1|c");
  ASSERT_TRUE(testing::wait_until([&] { return totals->total("e2e_count") > 10'000; }, 10s));
  for (int kill = 0; kill < 3; ++kill) {
    EXPECT_LT(kill_and_time_restart("aggregate"), kBackWithin);
    const double before = totals->total("e2e_count");
    ASSERT_TRUE(testing::wait_until([&] { return totals->total("e2e_count") > before + 5'000; }, 10s));
  }
  stop_load();
  wait_audit_settled(*audit);
  // The processor's state is in shared memory and committed with its ring
  // cursor: every increment that entered the raw ring is counted exactly
  // once across the kills, and the restored instance is no counter reset.
  EXPECT_TRUE(
      testing::wait_until([&] { return totals->total("e2e_count") == static_cast<double>(audit->count()); }, 10s))
      << totals->total("e2e_count") << " vs " << audit->count();
  EXPECT_EQ(totals->instances(), 1u);
  EXPECT_FALSE(audit->lapped());
  EXPECT_FALSE(totals->lapped());
  EXPECT_TRUE(testing::wait_until([&] { return scraped("e2e_count") == static_cast<double>(audit->count()); }, 10s))
      << scraped("e2e_count").value_or(-1) << " vs " << audit->count();
}

TEST_F(SupervisorE2e, KilledExporterServesTheCompleteStateWithinASecondUnderLoad) {
  start_file(pipeline_text());
  ASSERT_TRUE(testing::wait_until([&] { return pid_of("prometheus") != 0; }, 10s));
  auto totals = e2e::MetricTotals::attach(ring("metrics"));
  auto audit = e2e::SampleAudit::attach(ring("raw"), "e2e.count");
  ASSERT_TRUE(totals && audit);
  start_load("e2e.count:1|c");
  ASSERT_TRUE(testing::wait_until([&] { return scraped("e2e_count").value_or(0) > 10'000; }, 10s));
  for (int kill = 0; kill < 3; ++kill) {
    const std::uint32_t old = pid_of("prometheus");
    const double before = scraped("e2e_count").value_or(0);
    ASSERT_GT(before, 0);
    const auto t0 = std::chrono::steady_clock::now();
    ::kill(static_cast<pid_t>(old), SIGKILL);
    // Back, and serving at least what the dead one served: the whole state,
    // not only the series that changed since.
    ASSERT_TRUE(testing::wait_until(
        [&] {
          const std::uint32_t p = pid_of("prometheus");
          return p != 0 && p != old && scraped("e2e_count").value_or(0) >= before;
        },
        5s));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, kBackWithin);
  }
  stop_load();
  wait_audit_settled(*audit);
  // What /metrics serves equals every increment that entered the raw ring.
  EXPECT_TRUE(testing::wait_until([&] { return scraped("e2e_count") == static_cast<double>(audit->count()); }, 10s))
      << scraped("e2e_count").value_or(-1) << " vs " << audit->count();
  EXPECT_TRUE(
      testing::wait_until([&] { return totals->total("e2e_count") == static_cast<double>(audit->count()); }, 10s))
      << totals->total("e2e_count") << " vs " << audit->count();
  supervisor_->signal(SIGTERM);
  EXPECT_EQ(supervisor_->wait(20s), 0) << supervisor_->err();
}

TEST_F(SupervisorE2e, SigtermDuringLoadDrainsEveryAcceptedSampleAndExits0) {
  start_file(pipeline_text());
  auto totals = e2e::MetricTotals::attach(ring("metrics"));
  auto audit = e2e::SampleAudit::attach(ring("raw"), "e2e.count");
  ASSERT_TRUE(totals && audit);
  start_load("e2e.count:1|c");
  ASSERT_TRUE(testing::wait_until([&] { return audit->count() > 20'000; }, 10s));
  supervisor_->signal(SIGTERM);
  EXPECT_EQ(supervisor_->wait(20s), 0) << supervisor_->err();
  stop_load();
  // Nothing writes any more; the audit thread needs a moment to read the rest.
  EXPECT_TRUE(
      testing::wait_until([&] { return totals->total("e2e_count") == static_cast<double>(audit->count()); }, 5s))
      << totals->total("e2e_count") << " vs " << audit->count();
  EXPECT_GT(audit->count(), 20'000u);
  EXPECT_FALSE(audit->lapped());
  const std::string err = supervisor_->err();
  EXPECT_LT(err.find("component statsd: stopping"), err.find("component aggregate: stopping")) << err;
}

TEST_F(SupervisorE2e, SighupRestartsOnlyTheChangedProcessorAndLosesNothing) {
  const std::string mapping = dir_.file("mapping.yml");
  e2e::write_text(mapping, "mappings:\n  - match: e2e.hup\n    name: first_name\n");
  start_file(pipeline_text(", mapping_config: mapping.yml"));
  auto totals = e2e::MetricTotals::attach(ring("metrics"));
  ASSERT_TRUE(totals);
  constexpr int kN = 5'000, kM = 3'000;
  {
    e2e::TcpSender s(port_);
    ASSERT_TRUE(s.send(e2e::lines("e2e.hup:1|c", kN)));
    s.finish();
  }
  ASSERT_TRUE(testing::wait_until([&] { return totals->total("first_name") == kN; }, 10s));
  const std::uint32_t source = pid_of("statsd"), processor = pid_of("aggregate");
  e2e::write_text(mapping, "mappings:\n  - match: e2e.hup\n    name: second_name\n");
  supervisor_->signal(SIGHUP);
  ASSERT_TRUE(testing::wait_until([&] { return pid_of("aggregate") != 0 && pid_of("aggregate") != processor; }, 10s));
  {
    e2e::TcpSender s(port_);
    ASSERT_TRUE(s.send(e2e::lines("e2e.hup:1|c", kM)));
    s.finish();
  }
  EXPECT_TRUE(testing::wait_until([&] { return totals->total("second_name") == kM; }, 10s))
      << totals->total("second_name");
  EXPECT_EQ(totals->total("first_name"), kN);
  EXPECT_EQ(pid_of("statsd"), source);  // unchanged: not restarted
  EXPECT_NE(supervisor_->err().find("reloaded: 1 restarted, 0 added, 0 removed"), std::string::npos)
      << supervisor_->err();

  // A broken file is refused and the pipeline keeps running.
  e2e::write_text(file_, "rings: [\n");
  supervisor_->signal(SIGHUP);
  EXPECT_TRUE(testing::wait_until([&] { return supervisor_->err().find("reload refused") != std::string::npos; }, 5s));
  EXPECT_EQ(pid_of("statsd"), source);
}

// RssAnon of /proc/<pid>/status in KiB; 0 when it cannot be read.
std::uint64_t rss_anon_kib(std::uint32_t pid) {
  const std::string status = e2e::read_text("/proc/" + std::to_string(pid) + "/status");
  const std::size_t at = status.find("RssAnon:");
  return at == std::string::npos ? 0 : std::strtoull(status.c_str() + at + 8, nullptr, 10);
}

// What a scrape allocates (the page, its index arrays, the gzip pieces, on
// the serving threads) goes back to the system once it is served: after a
// few scrapes an exporter of many series holds what it held after the first.
// glibc used to keep it in its per-thread heaps (a 1M-series exporter went
// from 155 to 210 MB of anonymous memory in five scrapes).
TEST_F(SupervisorE2e, ScrapesLeaveTheExportersMemoryWhereTheFirstLeftIt) {
  start_file(pipeline_text());
  ASSERT_TRUE(testing::wait_until([&] { return pid_of("prometheus") != 0; }, 10s)) << supervisor_->err();
  constexpr int kSeries = 300'000;
  {
    e2e::TcpSender sender(port_);
    ASSERT_TRUE(sender.connect());
    std::string batch;
    for (int i = 0; i < kSeries; ++i) {
      batch += "mem.s" + std::to_string(i) + ":1|c\n";
      if (batch.size() > 60'000 || i + 1 == kSeries) {
        ASSERT_TRUE(sender.send(batch));
        batch.clear();
      }
    }
    sender.finish();
  }
  const std::string last = "\nmem_s" + std::to_string(kSeries - 1) + " 1\n";
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto [code, body] = exporters::testing::http_get(web_port_, "/metrics", "", 20s);
        return code == 200 && body.find(last) != std::string::npos;
      },
      90s));
  const std::uint32_t pid = pid_of("prometheus");
  std::this_thread::sleep_for(300ms);
  const std::uint64_t first = rss_anon_kib(pid);
  ASSERT_GT(first, 0U);
  for (int i = 0; i < 6; ++i) {
    const exporters::testing::RawHttpResponse r = exporters::testing::raw_http_get(
        web_port_, "/metrics", {{"Accept-Encoding", i % 2 ? "gzip" : "identity"}}, 30s);
    ASSERT_EQ(r.status, 200) << r.error;
  }
  std::this_thread::sleep_for(300ms);
  const std::uint64_t after = rss_anon_kib(pid);
  EXPECT_EQ(pid_of("prometheus"), pid);
  EXPECT_LT(after, first + first / 10 + 2048)
      << "anonymous memory after the first scrape " << first << " KiB, after six more " << after << " KiB";
  RecordProperty("rss_anon_first_kib", std::to_string(first));
  RecordProperty("rss_anon_after_kib", std::to_string(after));
}

TEST_F(SupervisorE2e, StatsdExporterFlagsRunTheBuiltInPipeline) {
  const std::string web = "127.0.0.1:" + std::to_string(e2e::free_tcp_port());
  start({"--statsd.listen-tcp=127.0.0.1:" + std::to_string(port_), "--statsd.listen-udp=", "--web.listen-address", web,
         "--run-dir", dir_.path().string()},
        "statsd-" + std::to_string(port_));  // named after its StatsD port: instances do not collide
  const config::PipelineConfig builtin = config::default_pipeline();
  const auto s = status();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->pipeline, "statsd-" + std::to_string(port_));
  std::vector<std::string> names;
  for (const auto& c : s->components) names.push_back(c.name);
  std::vector<std::string> expected;
  for (const auto& c : pipeline_components(builtin)) expected.push_back(c.name);
  EXPECT_EQ(names, expected);
  // The children got the same flags. The supervisor reports a child running
  // from fork(), so wait for its exec: until then /proc shows the supervisor's
  // argv (or nothing, while exec replaces the address space).
  std::string cmdline;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        cmdline = e2e::read_text("/proc/" + std::to_string(pid_of("statsd")) + "/cmdline");
        return cmdline.rfind(std::string("ringpipe:statsd") + '\0', 0) == 0;
      },
      10s))
      << cmdline;
  EXPECT_NE(cmdline.find("--web.listen-address"), std::string::npos);
  EXPECT_NE(cmdline.find("--run-dir"), std::string::npos);

  auto totals = e2e::MetricTotals::attach(ring("metrics"));
  ASSERT_TRUE(totals);
  constexpr int kN = 10'000;
  e2e::TcpSender sender(port_);
  ASSERT_TRUE(sender.send(e2e::lines("e2e.flags:1|c", kN)));
  sender.finish();
  EXPECT_TRUE(testing::wait_until([&] { return totals->total("e2e_flags") == kN; }, 10s)) << totals->total("e2e_flags");
  supervisor_->signal(SIGINT);
  EXPECT_EQ(supervisor_->wait(20s), 0) << supervisor_->err();
}

TEST_F(SupervisorE2e, GivesUpOnAComponentThatKeepsFailingAtStart) {
  // Someone else holds the port of a remote_write source (an HTTP server the
  // source binds itself, unlike the StatsD sockets the supervisor binds).
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port_);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  std::string text = pipeline_text();
  const std::string statsd = "statsd: {type: statsd, listen: [tcp://127.0.0.1:" + std::to_string(port_) + "]";
  ASSERT_NE(text.find(statsd), std::string::npos);
  text.replace(text.find(statsd), statsd.size(),
               "statsd: {type: remote_write, listen: 127.0.0.1:" + std::to_string(port_));
  e2e::write_text(file_, text);
  std::vector<std::string> args = {"run", file_, "--max-quick-failures", "3"};
  e2e::Proc sup(args, dir_.file("o"), dir_.file("e"));
  EXPECT_EQ(sup.wait(20s), 1);
  ::close(fd);
  const std::string err = sup.err();
  EXPECT_NE(err.find("component statsd: failed 3 times in a row within 2.0s of starting (last: exit status 1)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("Address already in use"), std::string::npos) << err;
  const auto s = status();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->state, SupervisorState::kFailed);
}

// The two sensor sources under the supervisor: JSON lines over TCP and MQTT
// from a real mosquitto broker (started here on a free loopback port), both
// counted exactly in the processor's output.
TEST_F(SupervisorE2e, JsonLinesAndMqttSourcesFeedThePipelineExactly) {
  if (!testing::MosquittoBroker::available()) GTEST_SKIP() << "needs Debian's mosquitto";
  const std::uint16_t mqtt_port = e2e::free_tcp_port();
  testing::MosquittoBroker broker(dir_.file("mosquitto.conf"), testing::MosquittoBroker::anonymous_listener(mqtt_port),
                                  {mqtt_port});
  ASSERT_TRUE(broker.start());

  e2e::write_text(file_, "pipeline: t\nrun_dir: " + dir_.path().string() + R"(
rings:
  raw: {size: 4MiB, lanes: 4, overflow: block}
  metrics: {size: 4MiB, lanes: 4, overflow: block}
sources:
  json: {type: json, listen: tcp://127.0.0.1:)" +
                             std::to_string(port_) + R"(, output: raw, kind: counter}
  mqtt: {type: mqtt, broker: "mqtt://127.0.0.1:)" +
                             std::to_string(mqtt_port) + R"(", topics: [e2e/#], qos: 1,
         topic_template: "e2e/+site/+name", kind: counter, output: raw}
processors:
  aggregate: {type: aggregate, input: raw, output: metrics, flush_interval: 100ms}
exporters:
  prometheus: {type: prometheus, input: metrics, listen: 127.0.0.1:)" +
                             std::to_string(web_port_) + "}\n");
  std::vector<std::string> args{"run", file_};
  supervisor_ = std::make_unique<e2e::Proc>(args, dir_.file("sup.out"), dir_.file("sup.err"));
  ASSERT_TRUE(testing::wait_until([&] { return pid_of("json") && pid_of("mqtt") && pid_of("aggregate"); }, 10s))
      << supervisor_->err();
  auto totals = e2e::MetricTotals::attach(ring("metrics"));
  ASSERT_TRUE(totals);

  constexpr int kN = 5000;
  e2e::TcpSender sender(port_);
  ASSERT_TRUE(
      sender.send(e2e::lines(R"({"name":"e2e_json","value":2,"host":"a","meta":{"skipped":true}})", kN) + "{broken\n"));
  sender.finish();
  EXPECT_TRUE(testing::wait_until([&] { return totals->total("e2e_json") == 2 * kN; }, 10s))
      << totals->total("e2e_json");

  mosquitto_lib_init();
  mosquitto* pub = mosquitto_new(nullptr, true, nullptr);
  ASSERT_NE(pub, nullptr);
  ASSERT_EQ(mosquitto_connect(pub, "127.0.0.1", mqtt_port, 30), MOSQ_ERR_SUCCESS);
  ASSERT_EQ(mosquitto_loop_start(pub), MOSQ_ERR_SUCCESS);
  // Probes until one arrives: the source is connected and subscribed.
  EXPECT_TRUE(testing::wait_until(
      [&] {
        mosquitto_publish(pub, nullptr, "e2e/probe/e2e_probe", 1, "1", 1, false);
        std::this_thread::sleep_for(50ms);
        return totals->total("e2e_probe") > 0;
      },
      15s));
  constexpr int kM = 300;
  for (int i = 0; i < kM; ++i) ASSERT_EQ(mosquitto_publish(pub, nullptr, "e2e/lab/e2e_mqtt", 1, "1", 1, false), 0);
  EXPECT_TRUE(testing::wait_until([&] { return totals->total("e2e_mqtt") == kM; }, 10s)) << totals->total("e2e_mqtt");
  mosquitto_disconnect(pub);
  mosquitto_loop_stop(pub, false);
  mosquitto_destroy(pub);

  supervisor_->signal(SIGINT);
  EXPECT_EQ(supervisor_->wait(20s), 0) << supervisor_->err();
}

}  // namespace
}  // namespace ringpipe::apps
