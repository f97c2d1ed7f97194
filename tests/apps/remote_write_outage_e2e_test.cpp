// `ringpipe run` with a prometheus and a remote_write exporter on one small
// metrics ring while the remote_write endpoint is down (nothing listening, or
// a listener that never answers): StatsD with new series keeps coming, the
// lane is overwritten many times, and /metrics must keep serving the new
// series. Then the endpoint comes up: every sample still in the lane reaches
// it, and the records the remote_write reader was lapped by are counted, so
// delivered + lost = written.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <set>

#include "e2e_util.hpp"
#include "prometheus_server.hpp"
#include "remote_write_stub.hpp"
#include "ringpipe/stats/stats_segment.hpp"
#include "status_file.hpp"

namespace ringpipe::apps {
namespace {

using namespace std::chrono_literals;
using exporters::testing::StubEndpoint;

enum class Outage { kRefused, kSilent };

// name{label=value} -> value of every entry of a segment; empty while it cannot be read.
std::map<std::string, double> segment_values(const std::string& path) {
  std::map<std::string, double> out;
  auto reader = stats::StatsReader::open(path);
  if (!reader) return out;
  for (const stats::StatsEntry& e : reader->snapshot()) {
    std::string key = e.name;
    for (const stats::StatsLabel& l : e.labels) key += "{" + l.name + "=" + l.value + "}";
    out[key] = e.value();
  }
  return out;
}

// A TCP listener on 127.0.0.1:port that never accepts: connections complete
// in the kernel and requests are never answered.
class SilentListener {
 public:
  explicit SilentListener(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd_, 64) == 0;
  }
  ~SilentListener() { close(); }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  [[nodiscard]] bool ok() const { return ok_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
};

struct RingCounts {
  std::uint64_t written = 0;  // records committed into all lanes
  std::uint64_t lane_bytes = 0;
  std::uint64_t lane_capacity = 0;
  bool has_reader = false;
  ring::ReaderStats reader{};
};

RingCounts ring_counts(const std::string& path, const std::string& reader) {
  RingCounts c;
  auto r = ring::Ring::open(path);
  if (!r) return c;
  const ring::RingStats s = r->stats();
  c.lane_capacity = s.lane_capacity_bytes;
  for (const auto& l : s.lane) {
    c.written += l.records;
    c.lane_bytes += l.bytes;
  }
  for (const auto& rd : s.readers) {
    if (rd.name == reader) {
      c.has_reader = true;
      c.reader = rd;
    }
  }
  return c;
}

// Every (series key as the stub writes it, timestamp ms) of the metric
// records still in the ring, read by a non-durable reader from the oldest
// (where a lapped reader resumes too).
std::set<std::pair<std::string, std::int64_t>> ring_backlog(const std::string& path) {
  std::set<std::pair<std::string, std::int64_t>> out;
  auto r = ring::Ring::open(path);
  EXPECT_TRUE(r);
  if (!r) return out;
  ring::ReaderOptions o;
  o.start = ring::StartAt::kOldest;
  o.durable = false;
  auto reader = ring::Reader::attach(*r, "test-backlog", o);
  EXPECT_TRUE(reader);
  if (!reader) return out;
  while (reader->poll([&](const ring::RecordView& v) {
    if (v.type != metric::kMetricBatchRecord) return;
    metric::MetricBatchReader m(v.payload);
    const std::int64_t ts = m.header().flush_ns / 1'000'000;
    while (auto e = m.next()) {
      if (e->kind != metric::EntryKind::kSeries) continue;
      out.insert({"__name__=" + std::string(e->name) + ";", ts});
    }
  }) != 0) {
  }
  return out;
}

class RemoteWriteOutageE2e : public ::testing::TestWithParam<Outage> {};

TEST_P(RemoteWriteOutageE2e, DeadEndpointNeitherFreezesMetricsNorLosesUncountedRecords) {
  testing::ScratchDir dir;
  const std::uint16_t statsd_port = e2e::free_tcp_port();
  const std::uint16_t web_port = e2e::free_tcp_port();
  const std::uint16_t rw_port = e2e::free_tcp_port();
  std::optional<SilentListener> silent;
  if (GetParam() == Outage::kSilent) {
    silent.emplace(rw_port);
    ASSERT_TRUE(silent->ok());
  }
  // 32 KiB lanes: each flush of ~100 changed series is a few KiB, so the
  // lane is overwritten several times a second.
  const std::string file = dir.file("p.yaml");
  e2e::write_text(file, "pipeline: t\nrun_dir: " + dir.path().string() + R"(
rings:
  raw: {size: 1MiB, lanes: 2, overflow: block}
  metrics: {size: 64KiB, lanes: 2, overflow: block}
sources:
  statsd: {type: statsd, listen: [tcp://127.0.0.1:)" +
                            std::to_string(statsd_port) + R"(], output: raw}
processors:
  agg: {type: aggregate, input: raw, output: metrics, flush_interval: 50ms}
exporters:
  prom: {type: prometheus, input: metrics, listen: 127.0.0.1:)" +
                            std::to_string(web_port) + R"(}
  rw: {type: remote_write, input: metrics, url: "http://127.0.0.1:)" +
                            std::to_string(rw_port) + R"(/api/v1/write",
       timeout: 200ms, retry_min_backoff: 10ms, retry_max_backoff: 50ms}
)");
  const std::string pipe_dir = dir.path().string() + "/t/";
  const std::string metrics_ring = pipe_dir + "metrics";
  const std::string rw_stats = pipe_dir + "rw.stats";
  e2e::Proc run({"run", file}, dir.file("run.out"), dir.file("run.err"));
  ASSERT_TRUE(testing::wait_until([&] { return ring_counts(metrics_ring, "rw").has_reader; }, 10s)) << run.err();

  std::string body;
  auto served = [&](const std::string& name) { return e2e::scraped_sum(web_port, name, 2s, &body); };
  e2e::TcpSender sender(statsd_port);
  ASSERT_TRUE(sender.connect(10s)) << run.err();

  // The outage: 100 busy counters change every 20 ms and a new series comes
  // every tick; each new series must reach /metrics promptly.
  constexpr int kTicks = 150;
  constexpr int kBusy = 100;
  std::string busy;
  for (int j = 0; j < kBusy; ++j) busy += "rw_busy_" + std::to_string(j) + ":1|c\n";
  for (int i = 0; i < kTicks; ++i) {
    ASSERT_TRUE(sender.send(busy + "rw_new_" + std::to_string(i) + ":1|c\n"));
    std::this_thread::sleep_for(20ms);
    if (i % 30 == 29) {
      const std::string name = "rw_new_" + std::to_string(i);
      ASSERT_TRUE(testing::wait_until([&] { return served(name).has_value(); }, 3s))
          << name << " never reached /metrics while the remote_write endpoint was down: the lane ("
          << ring_counts(metrics_ring, "rw").lane_capacity << " B) is full of what rw has not sent?\n"
          << run.err();
    }
  }
  sender.finish();
  ASSERT_TRUE(testing::wait_until([&] { return served("rw_busy_0") == kTicks; }, 5s)) << body;
  const RingCounts outage = ring_counts(metrics_ring, "rw");
  EXPECT_GT(outage.lane_bytes, 4 * outage.lane_capacity) << "the lane was not overwritten several times over";
  EXPECT_GT(segment_values(rw_stats)["remote_write_failed_requests_total{reason=network}"], 0)
      << "the endpoint was not down";
  EXPECT_EQ(segment_values(rw_stats)["remote_write_samples_sent_total"], 0);

  // Freeze the processor so the lane holds still: what it holds now is the
  // backlog that must reach the endpoint once it is back.
  pid_t agg = 0;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto st = read_status_file(status_file_path(dir.path().string(), "t"));
        if (!st) return false;
        for (const auto& c : st->components)
          if (c.name == "agg" && c.pid > 0) agg = static_cast<pid_t>(c.pid);
        return agg > 0;
      },
      5s));
  ASSERT_EQ(::kill(agg, SIGSTOP), 0);
  // It stays frozen until every check below is done: once continued it
  // writes more (a snapshot every 60 flushes, 3 s here), the exporter sends
  // that too, and the checks raced it (CI saw a stored sample newer than the
  // backlog, and samples_sent read before the last request was stored).
  struct Continue {
    pid_t pid;
    ~Continue() {
      if (pid > 0) ::kill(pid, SIGCONT);
    }
  } frozen{agg};
  const auto backlog = ring_backlog(metrics_ring);

  silent.reset();
  StubEndpoint endpoint([](const exporters::testing::SeenRequest&, std::size_t) { return 204; }, rw_port);
  RingCounts end;
  const bool drained = testing::wait_until(
      [&] {
        end = ring_counts(metrics_ring, "rw");
        return end.reader.lag_bytes == 0 && end.reader.records + end.reader.lapped_records == end.written;
      },
      10s);
  ASSERT_TRUE(drained) << "rw: records " << end.reader.records << " + lapped " << end.reader.lapped_records
                       << " != written " << end.written << ", lag " << end.reader.lag_bytes;

  // Lost is counted, and delivered + lost = written.
  std::map<std::string, double> seg;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        seg = segment_values(rw_stats);
        return seg["remote_write_records_total"] + seg["remote_write_lost_records_total"] ==
               static_cast<double>(end.written);
      },
      5s))
      << "delivered " << seg["remote_write_records_total"] << " + lost " << seg["remote_write_lost_records_total"]
      << " != written " << end.written;
  EXPECT_GT(end.reader.lapped_records, 0u);
  EXPECT_EQ(seg["remote_write_lost_records_total"], static_cast<double>(end.reader.lapped_records));
  // One warning when the loss began, one line once it caught up.
  EXPECT_TRUE(testing::wait_until([&] { return run.err().find("caught up with ring") != std::string::npos; }, 5s))
      << run.err();
  const std::string log = run.err();
  std::size_t warnings = 0;
  for (auto at = log.find("lapped on ring"); at != std::string::npos; at = log.find("lapped on ring", at + 1))
    ++warnings;
  EXPECT_EQ(warnings, 1u) << log;

  // Every sample still in the lane arrived, and nothing else was invented.
  const auto stored = endpoint.stored();
  ASSERT_FALSE(backlog.empty());
  std::size_t missing = 0;
  for (const auto& s : backlog) missing += stored.count(s) == 0 ? 1 : 0;
  EXPECT_EQ(missing, 0u) << "of " << backlog.size() << " samples in the lane when the endpoint came back";
  auto newest = [](const auto& samples) {
    std::int64_t ts = 0;
    for (const auto& s : samples) ts = std::max(ts, s.second);
    return ts;
  };
  EXPECT_EQ(newest(stored), newest(backlog)) << "the newest flush was not delivered";
  EXPECT_EQ(seg["remote_write_samples_sent_total"], static_cast<double>(stored.size()));

  ::kill(agg, SIGCONT);
  frozen.pid = 0;
  run.signal(SIGTERM);
  EXPECT_EQ(run.wait(20s), std::optional<int>(0)) << run.err();
}

INSTANTIATE_TEST_SUITE_P(Outages, RemoteWriteOutageE2e, ::testing::Values(Outage::kRefused, Outage::kSilent),
                         [](const ::testing::TestParamInfo<Outage>& i) {
                           return i.param == Outage::kRefused ? "ConnectionRefused" : "NeverAnswers";
                         });

}  // namespace
}  // namespace ringpipe::apps
