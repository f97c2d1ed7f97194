// A record that kills its reader, end to end: the real `ringpipe run` with a
// test-only crash point (RINGPIPE_TEST_CRASH, compiled in only with
// RINGPIPE_TEST_HOOKS). The component crashes on the record a few times, then
// quarantines it and keeps going; everything else is counted exactly once.

#include <gtest/gtest.h>

#include <sys/resource.h>

#include <cstdlib>

#include "components.hpp"
#include "e2e_util.hpp"
#include "prometheus_server.hpp"
#include "status_file.hpp"

namespace ringpipe::apps {
namespace {

using namespace std::chrono_literals;

class QuarantineE2e : public ::testing::Test {
 protected:
  void SetUp() override {
#if !defined(RINGPIPE_TEST_HOOKS) || !RINGPIPE_TEST_HOOKS
    GTEST_SKIP() << "built without RINGPIPE_TEST_HOOKS";
#endif
    // Each crash would otherwise write a core file.
    const rlimit none{0, 0};
    ::setrlimit(RLIMIT_CORE, &none);
  }
  void TearDown() override { ::unsetenv("RINGPIPE_TEST_CRASH"); }

  std::string pipeline_text() const {
    return "pipeline: t\nrun_dir: " + dir_.path().string() + R"(
rings:
  raw: {size: 4MiB, lanes: 4, overflow: block, reader_timeout: 5s}
  metrics: {size: 4MiB, lanes: 4, overflow: block}
sources:
  statsd: {type: statsd, listen: [tcp://127.0.0.1:)" +
           std::to_string(port_) + R"(], output: raw}
processors:
  aggregate: {type: aggregate, input: raw, output: metrics, flush_interval: 100ms}
exporters:
  prometheus: {type: prometheus, input: metrics, listen: 127.0.0.1:)" +
           std::to_string(web_port_) + "}\n";
  }

  std::optional<SupervisorStatus> status() const {
    auto s = read_status_file(status_file_path(dir_.path().string(), "t"));
    if (!s) return std::nullopt;
    return *s;
  }
  std::optional<ComponentStatus> component(const std::string& name) const {
    auto s = status();
    if (!s) return std::nullopt;
    for (const auto& c : s->components)
      if (c.name == name) return c;
    return std::nullopt;
  }
  bool running(const std::string& name) const {
    auto c = component(name);
    return c && c->state == ComponentState::kRunning && c->pid > 0 && ::kill(static_cast<pid_t>(c->pid), 0) == 0;
  }
  std::string ring(const std::string& name) const { return (dir_.path() / "t" / name).string(); }

  // The sum of every series of `name` on the exporter's /metrics.
  std::optional<double> scraped(const std::string& name) const { return e2e::scraped_sum(web_port_, name); }

  void start() {
    e2e::write_text(file_, pipeline_text());
    std::vector<std::string> args = {"run", file_};
    supervisor_ = std::make_unique<e2e::Proc>(args, dir_.file("sup.out"), dir_.file("sup.err"));
    ASSERT_TRUE(testing::wait_until([&] { return running("statsd") && running("aggregate"); }, 10s))
        << supervisor_->err();
  }

  // Sends `text` on its own connection and waits until the source read all of
  // it, so it lands in records of its own.
  void send_alone(const std::string& text) {
    e2e::TcpSender s(port_);
    ASSERT_TRUE(s.send(text));
    s.finish();
  }

  testing::ScratchDir dir_;
  std::uint16_t port_ = e2e::free_tcp_port();
  std::uint16_t web_port_ = e2e::free_tcp_port();
  std::string file_ = dir_.file("p.yaml");
  std::unique_ptr<e2e::Proc> supervisor_;
};

TEST_F(QuarantineE2e, ProcessorQuarantinesTheRecordThatKillsItAndCountsEverythingElseOnce) {
  ::setenv("RINGPIPE_TEST_CRASH", "processor:e2e.poison", 1);
  start();
  auto totals = e2e::MetricTotals::attach(ring("metrics"));
  ASSERT_TRUE(totals);
  constexpr int kN = 5'000;
  send_alone(e2e::lines("e2e.before:1|c", kN));
  ASSERT_TRUE(testing::wait_until([&] { return totals->total("e2e_before") == kN; }, 10s))
      << totals->total("e2e_before");

  send_alone("e2e.poison:1|c\n");
  // It dies on the record (three times, by default), then skips it.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto c = component("aggregate");
        return c && c->restarts >= 3 && running("aggregate");
      },
      20s))
      << supervisor_->err();
  send_alone(e2e::lines("e2e.after:1|c", kN));

  EXPECT_TRUE(testing::wait_until([&] { return totals->total("e2e_after") == kN; }, 20s))
      << totals->total("e2e_after") << "\n"
      << supervisor_->err();
  EXPECT_EQ(totals->total("e2e_before"), kN);
  EXPECT_EQ(totals->total("e2e_poison"), 0);
  EXPECT_EQ(totals->instances(), 1u);  // the state survived every crash: no counter reset
  EXPECT_FALSE(totals->lapped());
  // The pipeline stayed up: no give-up, and no crash after the quarantine.
  EXPECT_FALSE(supervisor_->wait(0ms).has_value()) << supervisor_->err();
  std::this_thread::sleep_for(500ms);
  auto c = component("aggregate");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->restarts, 3u);
  EXPECT_TRUE(running("aggregate"));

  const std::string err = supervisor_->err();
  const auto at = err.find("quarantined record of ring ");
  ASSERT_NE(at, std::string::npos) << err;
  const std::string line = err.substr(at, err.find('\n', at) - at);
  EXPECT_NE(line.find(ring("raw")), std::string::npos) << line;
  for (const char* field : {" lane ", " seq ", " position "}) EXPECT_NE(line.find(field), std::string::npos) << line;
  EXPECT_EQ(err.find("quarantined record", at + 1), std::string::npos) << "logged more than once:\n" << err;

  EXPECT_TRUE(testing::wait_until([&] { return scraped("ringpipe_processor_quarantined_records_total") == 1.0; }, 10s))
      << scraped("ringpipe_processor_quarantined_records_total").value_or(-1);
  EXPECT_TRUE(testing::wait_until([&] { return scraped("e2e_after") == kN; }, 10s));
  EXPECT_EQ(scraped("e2e_before"), kN);
  EXPECT_EQ(scraped("e2e_poison"), std::nullopt);

  supervisor_->signal(SIGTERM);
  EXPECT_EQ(supervisor_->wait(20s), 0) << supervisor_->err();
}

}  // namespace
}  // namespace ringpipe::apps
