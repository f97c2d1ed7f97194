// The pull endpoint under hostile or heavy load on loopback: idle and
// slow-header connections by the thousand, a slow header cut off, and 200
// scrapes at once of a large page. Every wait is bounded.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <latch>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gunzip.hpp"
#include "prometheus_server.hpp"
#include "record_builder.hpp"
#include "ringpipe/exporters/prometheus_exporter.hpp"
#include "ringpipe/ring/ring.hpp"
#include "test_support.hpp"

namespace ringpipe::exporters {
namespace {

using namespace std::chrono_literals;
using metric::MetricType;
using testing::origin;
using testing::RecordBuilder;

constexpr int kIdleConnections = 1000;
constexpr int kConcurrentScrapes = 200;

ring::Ring make_ring(const std::string& path) { return testing::make_block_ring(path, 2, 32 << 20); }

// Writes one complete snapshot of `series` gauges, `per_record` series a record.
void write_snapshot(ring::Ring& ring, int series, int per_record = 2000) {
  auto producer = ring::Producer::attach(ring);
  ASSERT_TRUE(producer);
  for (int first = 0; first < series; first += per_record) {
    RecordBuilder b(origin(7), 4 << 20);
    if (first == 0) b.begin(1);
    for (int i = first; i < std::min(series, first + per_record); ++i) {
      b.series(MetricType::kGauge, "load", {{"i", std::to_string(i)}}, {static_cast<double>(i)}, "Load test.");
    }
    if (first + per_record >= series) b.end(1);
    ASSERT_TRUE(b.ok());
    const auto rec = b.take();
    ASSERT_EQ(producer->write(metric::kMetricBatchRecord, rec, 2s), ring::WriteStatus::kOk);
  }
}

// Raises the soft RLIMIT_NOFILE to at least `want` (within the hard limit);
// returns the soft limit in force afterwards.
rlim_t raise_nofile(rlim_t want) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < want) {
    lim.rlim_cur = std::min(want, lim.rlim_max);
    (void)::setrlimit(RLIMIT_NOFILE, &lim);
    (void)::getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur;
}

// Client sockets closed on destruction.
struct Sockets {
  std::vector<int> fds;
  ~Sockets() {
    for (int fd : fds) ::close(fd);
  }
};

// Opens `n` non-blocking connections to 127.0.0.1:port and waits (bounded by
// `limit`) until they are established; those still pending are counted out.
// Every odd one then sends the start of a request header and never ends it.
int open_idle_connections(std::uint16_t port, int n, Sockets& out, std::chrono::milliseconds limit) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<pollfd> pending;
  for (int i = 0; i < n; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    out.fds.push_back(fd);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 || errno == EINPROGRESS) {
      pending.push_back(pollfd{fd, POLLOUT, 0});
    }
  }
  int connected = 0;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pending.empty() && std::chrono::steady_clock::now() < deadline) {
    if (::poll(pending.data(), pending.size(), 100) < 0) break;
    std::vector<pollfd> still;
    for (const pollfd& p : pending) {
      if (p.revents == 0) {
        still.push_back(pollfd{p.fd, POLLOUT, 0});
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) ++connected;
    }
    pending.swap(still);
  }
  constexpr std::string_view kPartial = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (std::size_t i = 1; i < out.fds.size(); i += 2) {
    (void)::send(out.fds[i], kPartial.data(), kPartial.size(), MSG_NOSIGNAL);
  }
  return connected;
}

std::unique_ptr<PrometheusExporter> start_exporter(const std::string& ring_path,
                                                   PrometheusExporterOptions o = PrometheusExporterOptions{}) {
  o.input = ring_path;
  o.listen = "127.0.0.1:0";
  auto exp = PrometheusExporter::create(o);
  EXPECT_TRUE(exp) << exp.error().message();
  if (!exp) return nullptr;
  EXPECT_TRUE((*exp)->start());
  EXPECT_TRUE(ringpipe::testing::wait_until([&] { return (*exp)->ready(); }, 10s));
  return std::move(*exp);
}

TEST(PrometheusExporterServe, AnswersHealthAndMetricsWithAThousandIdleAndSlowConnectionsOpen) {
  ASSERT_GE(raise_nofile(kIdleConnections + 256), static_cast<rlim_t>(kIdleConnections + 64))
      << "RLIMIT_NOFILE's hard limit is too low for this test";
  ringpipe::testing::ScratchDir dir;
  ring::Ring ring = make_ring(dir.file("metrics"));
  write_snapshot(ring, 10);
  auto exp = start_exporter(dir.file("metrics"));
  ASSERT_TRUE(exp);

  Sockets idle;
  const int connected = open_idle_connections(exp->port(), kIdleConnections, idle, 10s);
  EXPECT_EQ(connected, kIdleConnections) << "connections the exporter left hanging";

  const auto healthy = testing::http_get(exp->port(), "/-/healthy", "", 5s);
  EXPECT_EQ(healthy.first, 200) << healthy.second;
  const auto ready = testing::http_get(exp->port(), "/-/ready", "", 5s);
  EXPECT_EQ(ready.first, 200) << ready.second;
  const auto metrics = testing::http_get(exp->port(), "/metrics", "", 5s);
  EXPECT_EQ(metrics.first, 200) << metrics.second;
  EXPECT_NE(metrics.second.find("load{i=\"9\"}"), std::string::npos);
  EXPECT_GE(exp->stats().http_connections_open, static_cast<std::uint64_t>(kIdleConnections) / 2)
      << "the idle connections are served by workers, not left in the kernel's backlog";

  // Closed by their clients without a complete request: counted.
  const std::uint64_t before = exp->stats().http_incomplete_requests;
  for (int& fd : idle.fds) {
    ::close(fd);
    fd = -1;
  }
  idle.fds.clear();
  EXPECT_TRUE(ringpipe::testing::wait_until(
      [&] { return exp->stats().http_incomplete_requests >= before + kIdleConnections; }, 20s))
      << exp->stats().http_incomplete_requests;
  EXPECT_TRUE(ringpipe::testing::wait_until([&] { return exp->stats().http_connections_open == 0; }, 20s));
}

TEST(PrometheusExporterServe, ClosesAConnectionWhoseHeaderDoesNotArriveInTime) {
  ringpipe::testing::ScratchDir dir;
  ring::Ring ring = make_ring(dir.file("metrics"));
  write_snapshot(ring, 1);
  PrometheusExporterOptions o;
  o.header_timeout = 1s;
  auto exp = start_exporter(dir.file("metrics"), o);
  ASSERT_TRUE(exp);
  Sockets slow;
  ASSERT_EQ(open_idle_connections(exp->port(), 2, slow, 5s), 2);
  // Both (one silent, one with half a header) are closed by the server (EOF,
  // or civetweb's 400 for half a header), well before a client's 10 s patience runs out.
  for (int fd : slow.fds) {
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10'000), 1) << "still open after 10 s";
    char buf[256];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    const std::string_view got(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    EXPECT_TRUE(n == 0 || got.starts_with("HTTP/1.0 4") || got.starts_with("HTTP/1.1 4"))
        << "read " << n << ": " << got;
  }
  EXPECT_TRUE(ringpipe::testing::wait_until([&] { return exp->stats().http_incomplete_requests >= 2; }, 5s));
}

TEST(PrometheusExporterServe, AnswersTwoHundredConcurrentScrapesOfALargePage) {
  ASSERT_GE(raise_nofile(1024), static_cast<rlim_t>(kConcurrentScrapes + 64));
  ringpipe::testing::ScratchDir dir;
  ring::Ring ring = make_ring(dir.file("metrics"));
  constexpr int kSeries = 100'000;
  write_snapshot(ring, kSeries);
  auto exp = start_exporter(dir.file("metrics"));
  ASSERT_TRUE(exp);
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return exp->stats().series == kSeries; }, 20s));

  std::atomic<int> go{0};
  std::vector<int> status(kConcurrentScrapes, -1);
  std::vector<int> complete(kConcurrentScrapes, 0);
  std::vector<std::thread> clients;
  for (int i = 0; i < kConcurrentScrapes; ++i) {
    clients.emplace_back([&, i] {
      go.fetch_add(1);
      for (int spin = 0; go.load() < kConcurrentScrapes && spin < 10'000; ++spin) std::this_thread::sleep_for(1ms);
      const auto [st, body] = testing::http_get(exp->port(), "/metrics", "", 20s);
      status[static_cast<std::size_t>(i)] = st;
      if (st != 200) ADD_FAILURE() << st << ": " << body.substr(0, 200);
      complete[static_cast<std::size_t>(i)] =
          body.find("load{i=\"" + std::to_string(kSeries - 1) + "\"}") != std::string::npos;
    });
  }
  for (auto& t : clients) t.join();
  int answered = 0;
  int whole = 0;
  for (int i = 0; i < kConcurrentScrapes; ++i) {
    answered += status[static_cast<std::size_t>(i)] == 200;
    whole += complete[static_cast<std::size_t>(i)];
  }
  EXPECT_EQ(answered, kConcurrentScrapes);
  EXPECT_EQ(whole, kConcurrentScrapes);
  const PrometheusExporterStats s = exp->stats();
  EXPECT_EQ(s.scrapes, static_cast<std::uint64_t>(kConcurrentScrapes));
  EXPECT_LT(s.renders, s.scrapes) << "concurrent scrapes share a rendering of the page";
}

// Scrapes that share a rendering also share its gzip encoding: each page is
// compressed once, however many scrapes wanted it compressed.
TEST(PrometheusExporterServe, ConcurrentGzipScrapesCompressEachRenderingOnce) {
  constexpr int kScrapes = 32;
  ASSERT_GE(raise_nofile(1024), static_cast<rlim_t>(kScrapes + 64));
  ringpipe::testing::ScratchDir dir;
  ring::Ring ring = make_ring(dir.file("metrics"));
  constexpr int kSeries = 50'000;
  write_snapshot(ring, kSeries);
  auto exp = start_exporter(dir.file("metrics"));
  ASSERT_TRUE(exp);
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return exp->stats().series == kSeries; }, 20s));

  std::latch go(kScrapes);
  std::vector<int> gzipped(kScrapes, 0);
  std::vector<int> whole(kScrapes, 0);
  std::vector<std::thread> clients;
  for (int i = 0; i < kScrapes; ++i) {
    clients.emplace_back([&, i] {
      go.arrive_and_wait();
      const testing::RawHttpResponse r =
          testing::raw_http_get(exp->port(), "/metrics", {{"Accept-Encoding", "gzip"}}, 20s);
      if (r.status != 200) ADD_FAILURE() << r.status << ": " << r.error;
      gzipped[static_cast<std::size_t>(i)] = r.header("Content-Encoding") == "gzip";
      const std::optional<std::string> text = testing::gunzip(r.body);
      whole[static_cast<std::size_t>(i)] =
          text && text->find("load{i=\"" + std::to_string(kSeries - 1) + "\"}") != std::string::npos;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(std::count(gzipped.begin(), gzipped.end(), 1), kScrapes);
  EXPECT_EQ(std::count(whole.begin(), whole.end(), 1), kScrapes);
  const PrometheusExporterStats s = exp->stats();
  EXPECT_EQ(s.scrapes, static_cast<std::uint64_t>(kScrapes));
  EXPECT_LT(s.renders, s.scrapes) << "concurrent scrapes share a rendering of the page";

  // Rendered after every scrape above was over, before its own render counted.
  const testing::RawHttpResponse page = testing::raw_http_get(exp->port(), "/metrics");
  ASSERT_EQ(page.status, 200) << page.error;
  const auto text_renders =
      testing::sample_value(page.body, "ringpipe_exporter_http_render_seconds_count{step=\"text\"}");
  EXPECT_EQ(text_renders, static_cast<double>(s.renders));
  EXPECT_EQ(testing::sample_value(page.body, "ringpipe_exporter_http_render_seconds_count{step=\"gzip\"}"),
            text_renders)
      << "one compression per rendering";
}

// The nice value of each thread of this process (/proc/self/task/*/stat,
// the 17th field after the command's closing parenthesis).
std::vector<int> thread_nices() {
  std::vector<int> out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream in(task.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    std::string f;
    for (int i = 0; i < 17 && fields >> f; ++i) {
    }
    out.push_back(std::stoi(f));
  }
  return out;
}

// A page render must not take the CPU from the ring reader (whose lag fills
// the metric ring and, through the processor, the sources' sockets): the
// render threads (text and protobuf pages) run ten nice levels below the
// exporter's other threads.
TEST(PrometheusExporterServe, RendersPagesTenNiceLevelsBelowTheRingReaderAndTheHttpThreads) {
  errno = 0;
  const int base = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
  ASSERT_EQ(errno, 0);
  if (base > 9) GTEST_SKIP() << "the test runs at nice " << base << ": no room ten levels below";
  ringpipe::testing::ScratchDir dir;
  ring::Ring ring = make_ring(dir.file("metrics"));
  write_snapshot(ring, 100);
  auto exp = start_exporter(dir.file("metrics"));
  ASSERT_TRUE(exp);
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return exp->stats().series == 100; }, 10s));
  const testing::RawHttpResponse page = testing::raw_http_get(exp->port(), "/metrics");
  ASSERT_EQ(page.status, 200) << page.error;
  ASSERT_NE(page.body.find("load{i=\"99\"} 99"), std::string::npos);
  // Each render thread lowers its priority as it starts (the protobuf one
  // renders nothing here): bounded wait for both.
  std::vector<int> nices;
  EXPECT_TRUE(ringpipe::testing::wait_until(
      [&] {
        nices = thread_nices();
        return std::count(nices.begin(), nices.end(), base + 10) == 2;
      },
      10s))
      << "the text and the protobuf page's render threads";
  // This thread, the ring reader and the HTTP threads at least.
  EXPECT_GE(std::count(nices.begin(), nices.end(), base), 3);
  EXPECT_EQ(std::count(nices.begin(), nices.end(), base) + 2, static_cast<std::ptrdiff_t>(nices.size()));
}

}  // namespace
}  // namespace ringpipe::exporters
