#include "ringpipe/ingest/ingest_server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "memory_target.hpp"
#include "net_clients.hpp"
#include "ringpipe/stats/stats_segment.hpp"
#include "test_support.hpp"

namespace ringpipe::ingest {
namespace {

using namespace std::chrono_literals;
using testing::MemoryStore;

constexpr auto kWait = 5000ms;

struct Fixture {
  std::shared_ptr<MemoryStore> store = std::make_shared<MemoryStore>();
  ringpipe::testing::ScratchDir dir;
  std::unique_ptr<IngestServer> server;

  static IngestConfig base() {
    IngestConfig c;
    c.name = "test";
    c.source_id = 3;
    c.stop_drain_timeout = std::chrono::milliseconds(200);
    return c;
  }
  void start(const IngestConfig& c) {
    auto s = IngestServer::create(c, testing::memory_targets(store));
    ASSERT_TRUE(s) << s.error().message();
    server = std::move(*s);
    ASSERT_TRUE(server->start());
  }
  bool wait_written(std::uint64_t n) {
    return ringpipe::testing::wait_until([&] { return server->stats().samples_written.load() >= n; }, kWait);
  }
};

TEST(IngestServer, ReceivesUdpPacketsAsOneBatchRecordEach) {
  Fixture f;
  IngestConfig c = Fixture::base();
  c.udp = UdpConfig{.port = 0};
  f.start(c);
  ASSERT_NE(f.server->udp_port(), 0);
  auto fd = testing::udp_socket();
  ASSERT_TRUE(testing::send_udp(fd.get(), f.server->udp_port(), "a:1|c\nb:2|g\nbad\n"));
  ASSERT_TRUE(f.wait_written(2));
  f.server->stop();
  const auto samples = f.store->samples();
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].name, "a");
  EXPECT_EQ(samples[1].kind, sample::Kind::kGauge);
  EXPECT_EQ(f.store->record_count(), 1u);  // one claim for the packet, not one per line
  EXPECT_EQ(f.server->stats().parse_error(ParseError::kMalformedLine), 1u);
  EXPECT_EQ(f.server->stats().udp_packets.load(), 1u);
  EXPECT_EQ(f.server->stats().lines.load(), 3u);
}

// statsd_exporter's ":9125" listens on IPv4 and IPv6: so does "::", whatever
// net.ipv6.bindv6only says. A client sending to ::1 is not lost.
TEST(IngestServer, AWildcardIpv6AddressReceivesIpv4AndIpv6Senders) {
  const int probe = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (probe < 0) GTEST_SKIP() << "no IPv6 on this host";
  ::close(probe);
  Fixture f;
  IngestConfig c = Fixture::base();
  c.udp = UdpConfig{.address = "::", .port = 0};
  f.start(c);
  const std::uint16_t port = f.server->udp_port();
  ASSERT_NE(port, 0);
  auto v4 = testing::udp_socket();
  ASSERT_TRUE(testing::send_udp(v4.get(), port, "from_v4:1|c\n"));
  const int v6 = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(v6, 0);
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_port = htons(port);
  to.sin6_addr = in6addr_loopback;
  const std::string line = "from_v6:1|c\n";
  ASSERT_EQ(::sendto(v6, line.data(), line.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to),
            static_cast<ssize_t>(line.size()));
  ::close(v6);
  ASSERT_TRUE(f.wait_written(2));
  f.server->stop();
  std::vector<std::string> names;
  for (const auto& s : f.store->samples()) names.push_back(s.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"from_v4", "from_v6"}));
}

TEST(IngestServer, ParsesJsonObjectsOnePerDatagramLine) {
  Fixture f;
  IngestConfig c = Fixture::base();
  c.parser.protocol = Protocol::kJson;
  c.parser.json.kind = sample::Kind::kCounter;
  c.udp = UdpConfig{.port = 0};
  f.start(c);
  auto fd = testing::udp_socket();
  ASSERT_TRUE(testing::send_udp(fd.get(), f.server->udp_port(),
                                "{\"name\":\"a\",\"value\":1,\"k\":\"v\"}\n[]\n{\"name\":\"b\",\"value\":2}"));
  ASSERT_TRUE(f.wait_written(2));
  f.server->stop();
  const auto samples = f.store->samples();
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].name, "a");
  EXPECT_EQ(samples[0].kind, sample::Kind::kCounter);
  EXPECT_EQ(samples[0].tags, (testing::Tags{{"k", "v"}}));
  EXPECT_EQ(samples[1].name, "b");
  EXPECT_EQ(f.store->record_count(), 1u);
  EXPECT_EQ(f.server->stats().parse_error(ParseError::kNotAnObject), 1u);
}

TEST(IngestServer, SpreadsUdpOverReusePortSocketsEachWithItsOwnTarget) {
  Fixture f;
  IngestConfig c = Fixture::base();
  c.udp = UdpConfig{.port = 0, .sockets = 4};
  f.start(c);
  EXPECT_EQ(f.store->targets.load(), 4);
  constexpr int kSenders = 16;
  for (int i = 0; i < kSenders; ++i) {  // distinct source ports hash to different sockets
    auto fd = testing::udp_socket();
    ASSERT_TRUE(testing::send_udp(fd.get(), f.server->udp_port(), "m:1|c"));
  }
  ASSERT_TRUE(f.wait_written(kSenders));
  f.server->stop();
  EXPECT_EQ(f.store->samples().size(), static_cast<std::size_t>(kSenders));
  EXPECT_EQ(f.server->stats().udp_kernel_drops_total(), 0u);
}

TEST(IngestServer, CountsKernelDropsOfEachUdpSocket) {
  Fixture f;
  IngestConfig c = Fixture::base();
  c.udp = UdpConfig{.port = 0, .receive_buffer_bytes = 4096};
  // Bound but not reading yet: the small socket buffer overflows in the kernel.
  auto s = IngestServer::create(c, testing::memory_targets(f.store));
  ASSERT_TRUE(s) << s.error().message();
  f.server = std::move(*s);
  auto fd = testing::udp_socket();
  const std::string packet = std::string(1000, 'x') + ":1|c\n";
  constexpr int kSent = 100;
  for (int i = 0; i < kSent; ++i) ASSERT_TRUE(testing::send_udp(fd.get(), f.server->udp_port(), packet));
  ASSERT_TRUE(f.server->start());
  // The kernel reports the drop count on the next datagram it queues.
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return f.server->stats().udp_packets.load() > 0; }, kWait));
  ASSERT_TRUE(testing::send_udp(fd.get(), f.server->udp_port(), "probe:1|c"));
  const auto& st = f.server->stats();
  ASSERT_TRUE(ringpipe::testing::wait_until(
      [&] { return st.udp_packets.load() + st.udp_kernel_drops_total() == kSent + 1; }, kWait))
      << "packets " << st.udp_packets.load() << " drops " << st.udp_kernel_drops_total();
  f.server->stop();
  EXPECT_GT(st.udp_kernel_drops[0].load(), 0u);
  EXPECT_EQ(st.udp_kernel_drops_total(), st.udp_kernel_drops[0].load());
}

TEST(IngestServer, FramesTcpLinesAcrossReadsAndParsesTheLastLineAtEof) {
  Fixture f;
  IngestConfig c = Fixture::base();
  c.tcp = TcpConfig{.port = 0};
  f.start(c);
  auto fd = testing::tcp_connect(f.server->tcp_port());
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(testing::send_all(fd.get(), "first:1|"));
  std::this_thread::sleep_for(20ms);  // a separate read
  ASSERT_TRUE(testing::send_all(fd.get(), "c\r\nsecond:2|c\nthi"));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(testing::send_all(fd.get(), "rd:3|c"));
  fd.reset();
  ASSERT_TRUE(f.wait_written(3));
  f.server->stop();
  const auto samples = f.store->samples();
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[0].name, "first");
  EXPECT_EQ(samples[1].name, "second");
  EXPECT_EQ(samples[2].name, "third");
  EXPECT_EQ(f.server->stats().lines.load(), 3u);
}

TEST(IngestServer, SkipsTooLongTcpLineAndKeepsTheConnection) {
  Fixture f;
  IngestConfig c = Fixture::base();
  c.tcp = TcpConfig{.port = 0, .max_line_bytes = 32};
  f.start(c);
  auto fd = testing::tcp_connect(f.server->tcp_port());
  ASSERT_TRUE(fd.valid());
  const std::string longline = std::string(100, 'x') + ":1|c\n";
  ASSERT_TRUE(testing::send_all(fd.get(), "before:1|c\n" + longline + "after:1|c\n"));
  ASSERT_TRUE(f.wait_written(2));
  ASSERT_TRUE(testing::send_all(fd.get(), longline + longline + "later:1|c\n"));  // still served
  ASSERT_TRUE(f.wait_written(3));
  f.server->stop();
  const auto samples = f.store->samples();
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[1].name, "after");
  EXPECT_EQ(samples[2].name, "later");
  EXPECT_EQ(f.server->stats().parse_error(ParseError::kLineTooLong), 3u);
  EXPECT_EQ(f.server->stats().tcp.connections.load(), 1u);
}

TEST(IngestServer, RefusesConnectionsBeyondTheLimit) {
  Fixture f;
  IngestConfig c = Fixture::base();
  c.tcp = TcpConfig{.port = 0, .max_connections = 1};
  f.start(c);
  auto first = testing::tcp_connect(f.server->tcp_port());
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return f.server->stats().tcp.connections_open.load() == 1; }, kWait));
  auto second = testing::tcp_connect(f.server->tcp_port());
  ASSERT_TRUE(
      ringpipe::testing::wait_until([&] { return f.server->stats().tcp.connections_rejected.load() == 1; }, kWait));
  ASSERT_TRUE(testing::send_all(first.get(), "ok:1|c\n"));
  ASSERT_TRUE(f.wait_written(1));
  f.server->stop();
}

// Each connection may hold a partial line of up to max_line_bytes, but all of
// them together at most max_buffered_bytes: a connection whose partial line
// would take more is closed and counted, the others are served.
TEST(IngestServer, ClosesConnectionsWhosePartialLinesPassTheSharedBufferBudget) {
  Fixture f;
  IngestConfig c = Fixture::base();
  constexpr std::size_t kBudget = std::size_t{4} << 20;
  c.tcp = TcpConfig{.port = 0, .max_line_bytes = 1 << 20, .max_buffered_bytes = kBudget};
  f.start(c);
  const StreamStats& st = f.server->stats().tcp;
  constexpr int kConnections = 16;
  const std::string partial(std::size_t{512} << 10, 'x');  // no '\n': all of it stays buffered
  std::vector<UniqueFd> held;
  int closed = 0;
  std::uint64_t peak = 0;
  for (int i = 0; i < kConnections; ++i) {
    auto fd = testing::tcp_connect(f.server->tcp_port());
    ASSERT_TRUE(fd.valid());
    const std::uint64_t bytes_before = st.bytes.load();
    const std::uint64_t closed_before = st.buffer_closed.load();
    testing::send_all(fd.get(), partial);  // may fail once the server closed it
    // Settled: either every byte was read and kept, or the connection was closed for the budget.
    ASSERT_TRUE(ringpipe::testing::wait_until(
        [&] { return st.bytes.load() == bytes_before + partial.size() || st.buffer_closed.load() > closed_before; },
        kWait))
        << "connection " << i;
    peak = std::max<std::uint64_t>(peak, st.buffered_bytes.load());
    if (st.buffer_closed.load() > closed_before) {
      ++closed;
      char byte;
      EXPECT_LE(::recv(fd.get(), &byte, 1, 0), 0) << "connection " << i << " should be closed";
    } else {
      held.push_back(std::move(fd));
    }
  }
  EXPECT_GE(held.size(), 1u);  // one longest line always fits
  EXPECT_LE(held.size(), kBudget / partial.size());
  EXPECT_GE(closed, 1);
  EXPECT_EQ(st.buffer_closed.load(), static_cast<std::uint64_t>(closed));
  EXPECT_LE(peak, kBudget);
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return st.connections_open.load() == held.size(); }, kWait));
  // The connections kept are served: their long line ends (malformed), the next one counts.
  for (auto& fd : held) ASSERT_TRUE(testing::send_all(fd.get(), "\nok:1|c\n"));
  ASSERT_TRUE(f.wait_written(held.size()));
  EXPECT_EQ(f.server->stats().parse_error(ParseError::kMalformedLine), held.size());
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return st.buffered_bytes.load() == 0; }, kWait));
  f.server->stop();
}

TEST(IngestServer, ClosesIdleConnections) {
  Fixture f;
  IngestConfig c = Fixture::base();
  c.tcp = TcpConfig{.port = 0, .idle_timeout = 50ms};
  f.start(c);
  auto fd = testing::tcp_connect(f.server->tcp_port());
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return f.server->stats().tcp.idle_closed.load() == 1; }, kWait));
  EXPECT_EQ(f.server->stats().tcp.connections_open.load(), 0u);
  char byte;
  EXPECT_EQ(::recv(fd.get(), &byte, 1, 0), 0);  // the server closed it
  f.server->stop();
}

TEST(IngestServer, ReceivesOnUnixDatagramAndStreamSocketsWithTheConfiguredMode) {
  Fixture f;
  IngestConfig c = Fixture::base();
  c.unix_datagram = UnixDatagramConfig{.path = f.dir.file("dgram.sock"), .mode = 0660};
  c.unix_stream = UnixStreamConfig{.path = f.dir.file("stream.sock"), .mode = 0600};
  f.start(c);
  struct stat st {};
  ASSERT_EQ(::stat(c.unix_datagram->path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  ASSERT_EQ(::stat(c.unix_stream->path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto dg = testing::unixgram_socket();
  ASSERT_TRUE(testing::send_unixgram(dg.get(), c.unix_datagram->path, "d:1|c\n"));
  auto s = testing::unix_connect(c.unix_stream->path);
  ASSERT_TRUE(s.valid());
  ASSERT_TRUE(testing::send_all(s.get(), "s:1|c\n"));
  ASSERT_TRUE(f.wait_written(2));
  f.server->stop();
  EXPECT_EQ(f.server->stats().unix_datagram_packets.load(), 1u);
  EXPECT_EQ(f.server->stats().unix_stream.connections.load(), 1u);
}

TEST(IngestServer, CountsSamplesAsDroppedWhenTheTargetRefuses) {
  Fixture f;
  f.store->refuse = true;
  IngestConfig c = Fixture::base();
  c.udp = UdpConfig{.port = 0};
  f.start(c);
  auto fd = testing::udp_socket();
  ASSERT_TRUE(testing::send_udp(fd.get(), f.server->udp_port(), "a:1|c\nb:1|c\nc:1|c"));
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return f.server->stats().samples_dropped.load() == 3; }, kWait));
  f.server->stop();
  EXPECT_EQ(f.server->stats().samples_written.load(), 0u);
  EXPECT_EQ(f.server->stats().records_dropped.load(), 1u);
  EXPECT_EQ(f.store->dropped_records.load(), 1u);  // the producer's shared counter was told
}

TEST(IngestServer, RotatesToANewRecordWhenAPacketOverflowsOneClaim) {
  Fixture f;
  f.store->claim_bytes = 512;
  IngestConfig c = Fixture::base();
  c.udp = UdpConfig{.port = 0};
  f.start(c);
  std::string packet;
  for (int i = 0; i < 100; ++i) packet += "metric.number." + std::to_string(i) + ":1|c\n";
  auto fd = testing::udp_socket();
  ASSERT_TRUE(testing::send_udp(fd.get(), f.server->udp_port(), packet));
  ASSERT_TRUE(f.wait_written(100));
  f.server->stop();
  EXPECT_EQ(f.store->samples().size(), 100u);
  EXPECT_GT(f.store->record_count(), 1u);
}

// The value of one entry of a stats segment, or -1 when it is absent.
double segment_value(const std::string& path, std::string_view name, const stats::StatsLabels& labels = {}) {
  auto r = stats::StatsReader::open(path);
  if (!r) return -1;
  for (const stats::StatsEntry& e : r->snapshot()) {
    if (e.name == name && e.labels == labels) return e.value();
  }
  return -1;
}

TEST(IngestServer, PublishesItsCountersInAStatsSegmentWhileRunningAndExactlyAtStop) {
  Fixture f;
  IngestConfig c = Fixture::base();
  c.udp = UdpConfig{.port = 0};
  c.tcp = TcpConfig{.port = 0};
  c.stats_path = f.dir.file("test.stats");
  c.stats_interval = 20ms;
  f.start(c);
  auto fd = testing::udp_socket();
  ASSERT_TRUE(testing::send_udp(fd.get(), f.server->udp_port(), "a:1|c\nb:2|g\nbad\nx:1|zz\n"));
  ASSERT_TRUE(f.wait_written(2));
  // Another process would see it within the interval, without asking.
  EXPECT_TRUE(ringpipe::testing::wait_until(
      [&] { return segment_value(c.stats_path, "source_samples_written_total") == 2; }, kWait));
  ASSERT_TRUE(testing::send_udp(fd.get(), f.server->udp_port(), "c:3|ms\n"));
  ASSERT_TRUE(f.wait_written(3));
  f.server->stop();

  auto r = stats::StatsReader::open(c.stats_path);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->info().component, "test");
  EXPECT_EQ(r->info().kind, "source");
  EXPECT_EQ(r->malformed(), 0u);
  EXPECT_EQ(segment_value(c.stats_path, "source_lines_total"), 5);
  EXPECT_EQ(segment_value(c.stats_path, "source_samples_written_total"), 3);
  EXPECT_EQ(segment_value(c.stats_path, "source_ring_dropped_samples_total"), 0);
  EXPECT_EQ(segment_value(c.stats_path, "source_datagrams_total", {{"transport", "udp"}}), 2);
  EXPECT_EQ(segment_value(c.stats_path, "source_parse_errors_total", {{"reason", "malformed_line"}}), 1);
  EXPECT_EQ(segment_value(c.stats_path, "source_parse_errors_total", {{"reason", "unknown_type"}}), 1);
  EXPECT_EQ(segment_value(c.stats_path, "source_parse_errors_total", {{"reason", "invalid_utf8"}}), 0);
  const std::string socket = "udp 127.0.0.1:" + std::to_string(f.server->udp_port()) + " #0";
  EXPECT_EQ(segment_value(c.stats_path, "source_kernel_drops_total", {{"socket", socket}}), 0);
  EXPECT_EQ(segment_value(c.stats_path, "source_connections_open", {{"transport", "tcp"}}), 0);
  EXPECT_EQ(f.server->stats().lines.load(), 5u);  // the in-process view is unchanged
}

TEST(IngestServer, RestartedServerContinuesItsSegmentCounters) {
  Fixture f;
  IngestConfig c = Fixture::base();
  c.udp = UdpConfig{.port = 0};
  c.stats_path = f.dir.file("test.stats");
  auto fd = testing::udp_socket();
  for (int run = 1; run <= 2; ++run) {
    f.start(c);
    ASSERT_TRUE(testing::send_udp(fd.get(), f.server->udp_port(), "a:1|c\nbad\n"));
    ASSERT_TRUE(f.wait_written(1));
    f.server.reset();  // stop, publish, release the segment
    EXPECT_EQ(segment_value(c.stats_path, "source_samples_written_total"), run);
    EXPECT_EQ(segment_value(c.stats_path, "source_parse_errors_total", {{"reason", "malformed_line"}}), run);
  }
}

TEST(IngestServer, ServersOfOneProcessSumIntoASharedSegment) {
  Fixture f;
  const std::string path = f.dir.file("shared.stats");
  auto seg = stats::StatsSegment::create(path, "test", "source");
  ASSERT_TRUE(seg);
  IngestConfig c = Fixture::base();
  c.udp = UdpConfig{.port = 0};
  c.stats_segment = std::make_shared<stats::StatsSegment>(std::move(*seg));
  Fixture g;
  f.start(c);
  g.start(c);
  auto fd = testing::udp_socket();
  ASSERT_TRUE(testing::send_udp(fd.get(), f.server->udp_port(), "a:1|c\n"));
  ASSERT_TRUE(testing::send_udp(fd.get(), g.server->udp_port(), "a:1|c\nb:1|c\n"));
  ASSERT_TRUE(f.wait_written(1));
  ASSERT_TRUE(g.wait_written(2));
  f.server->stop();
  g.server->stop();
  EXPECT_EQ(segment_value(path, "source_samples_written_total"), 3);
}

TEST(IngestServer, FailsToCreateWhenThePortIsTaken) {
  Fixture f;
  IngestConfig c = Fixture::base();
  c.udp = UdpConfig{.port = 0};
  f.start(c);
  IngestConfig again = Fixture::base();
  again.udp = UdpConfig{.port = f.server->udp_port()};
  auto s = IngestServer::create(again, testing::memory_targets(f.store));
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("bind"), std::string::npos) << s.error().message();
}

// Routes spdlog's default logger into a string while it lives.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("captured", sink);
    logger->set_level(spdlog::level::trace);
    logger->set_pattern("%l %v");
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;

  // Everything logged so far.
  std::string text() {
    spdlog::default_logger()->flush();
    return out_.str();
  }

  // Lines that contain `needle`.
  int count(std::string_view needle) {
    spdlog::default_logger()->flush();
    std::istringstream in(out_.str());
    int n = 0;
    for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos;
    return n;
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST(IngestServer, LogsAFloodOfMalformedLinesOncePerIntervalAndCountsEveryLine) {
  CapturedLog log;
  Fixture f;
  IngestConfig c = Fixture::base();
  c.udp = UdpConfig{.port = 0};
  c.tcp = TcpConfig{.port = 0};
  c.error_log_interval = std::chrono::hours(1);  // the whole test is one interval
  f.start(c);
  constexpr int kPackets = 100;
  auto fd = testing::udp_socket();
  for (int i = 0; i < kPackets; ++i) {
    ASSERT_TRUE(testing::send_udp(fd.get(), f.server->udp_port(), "bad one\nok:1|c\nbad two\n"));
    // Spread over many receive batches, each of which may want to log.
    if (i % 10 == 9) {
      ASSERT_TRUE(f.wait_written(static_cast<std::uint64_t>(i) + 1));
    }
  }
  constexpr int kTcpLines = 500;
  auto tcp = testing::tcp_connect(f.server->tcp_port());
  ASSERT_TRUE(tcp.valid());
  for (int i = 0; i < kTcpLines; ++i) {
    ASSERT_TRUE(testing::send_all(tcp.get(), "still bad\n"));
    if (i % 100 == 99) std::this_thread::sleep_for(2ms);  // separate reads
  }
  tcp.reset();
  const auto& st = f.server->stats();
  ASSERT_TRUE(ringpipe::testing::wait_until(
      [&] { return st.parse_error(ParseError::kMalformedLine) == 2 * kPackets + kTcpLines; }, kWait))
      << st.parse_error(ParseError::kMalformedLine);
  f.server->stop();
  EXPECT_EQ(st.samples_written.load(), static_cast<std::uint64_t>(kPackets));
  EXPECT_EQ(log.count("malformed"), 1);
}

// The warning names each reason with its count, the first refused line and
// its sender, so an operator can find the client that sends it.
TEST(IngestServer, WarnsWithTheReasonsTheFirstBadLineAndItsSender) {
  CapturedLog log;
  Fixture f;
  IngestConfig c = Fixture::base();
  c.udp = UdpConfig{.port = 0};
  c.tcp = TcpConfig{.port = 0};
  c.error_log_interval = std::chrono::milliseconds(1);
  f.start(c);
  auto fd = testing::udp_socket();
  const sockaddr_in any = testing::loopback_address(0);
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&any), sizeof any), 0);
  sockaddr_in self{};
  socklen_t self_len = sizeof self;
  ASSERT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&self), &self_len), 0);
  const std::string sender = "127.0.0.1:" + std::to_string(ntohs(self.sin_port));
  const std::string long_name(300, 'x');
  ASSERT_TRUE(testing::send_udp(fd.get(), f.server->udp_port(), "ok:1|c\nlat:1|ms|T\nq:1|zz\n" + long_name + ":1|q\n"));
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return f.server->stats().lines.load() >= 4; }, kWait));
  std::this_thread::sleep_for(10ms);  // past the 1 ms log interval
  auto tcp = testing::tcp_connect(f.server->tcp_port());
  ASSERT_TRUE(tcp.valid());
  ASSERT_TRUE(testing::send_all(tcp.get(), "good:2|c\nno value here\n"));
  tcp.reset();
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return f.server->stats().lines.load() >= 6; }, kWait));
  f.server->stop();
  const std::string text = log.text();
  EXPECT_NE(
      text.find("malformed_timestamp 1, unknown_type 2; first: malformed_timestamp: \"lat:1|ms|T\" from " + sender),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("first: malformed_line: \"no value here\" from 127.0.0.1:"), std::string::npos) << text;
  EXPECT_EQ(f.server->stats().parse_error(ParseError::kMalformedTimestamp), 1u);
  EXPECT_EQ(f.server->stats().parse_error(ParseError::kUnknownType), 2u);
}

TEST(IngestServer, TruncatesTheBadLineItLogs) {
  CapturedLog log;
  Fixture f;
  IngestConfig c = Fixture::base();
  c.udp = UdpConfig{.port = 0};
  f.start(c);
  auto fd = testing::udp_socket();
  ASSERT_TRUE(testing::send_udp(fd.get(), f.server->udp_port(), std::string(300, 'x') + ":1|q\x01"));
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return f.server->stats().lines.load() >= 1; }, kWait));
  f.server->stop();
  const std::string text = log.text();
  EXPECT_NE(text.find("unknown_type: \"" + std::string(120, 'x') + "\" (first 120 of 305 bytes) from 127.0.0.1:"),
            std::string::npos)
      << text;
}

// Makes a socket file at `path` and closes the socket, as a crashed run leaves it.
void leave_stale_socket(const std::string& path, int type) {
  const int fd = ::socket(AF_UNIX, type, 0);
  ASSERT_GE(fd, 0);
  const sockaddr_un a = testing::unix_address(path);
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a), 0);
  ::close(fd);
}

TEST(IngestServer, ReplacesAStaleSocketFileFromAPreviousRun) {
  Fixture f;
  IngestConfig c = Fixture::base();
  c.unix_datagram = UnixDatagramConfig{.path = f.dir.file("dgram.sock")};
  c.unix_stream = UnixStreamConfig{.path = f.dir.file("stream.sock")};
  leave_stale_socket(c.unix_datagram->path, SOCK_DGRAM);
  leave_stale_socket(c.unix_stream->path, SOCK_STREAM);
  f.start(c);
  auto dg = testing::unixgram_socket();
  ASSERT_TRUE(testing::send_unixgram(dg.get(), c.unix_datagram->path, "d:1|c\n"));
  auto s = testing::unix_connect(c.unix_stream->path);
  ASSERT_TRUE(s.valid());
  ASSERT_TRUE(testing::send_all(s.get(), "s:1|c\n"));
  ASSERT_TRUE(f.wait_written(2));
  f.server.reset();
  struct stat st {};
  EXPECT_NE(::lstat(c.unix_datagram->path.c_str(), &st), 0);  // removed at stop
  EXPECT_NE(::lstat(c.unix_stream->path.c_str(), &st), 0);
}

TEST(IngestServer, RefusesToRemoveAFileThatIsNotASocket) {
  for (const bool stream : {false, true}) {
    Fixture f;
    const std::string path = f.dir.file("precious.txt");
    {
      std::ofstream out(path);
      out << "keep me\n";
    }
    IngestConfig c = Fixture::base();
    if (stream) {
      c.unix_stream = UnixStreamConfig{.path = path};
    } else {
      c.unix_datagram = UnixDatagramConfig{.path = path};
    }
    auto s = IngestServer::create(c, testing::memory_targets(f.store));
    ASSERT_FALSE(s) << (stream ? "stream" : "datagram");
    EXPECT_NE(s.error().message().find("not a socket"), std::string::npos) << s.error().message();
    EXPECT_NE(s.error().message().find(path), std::string::npos) << s.error().message();
    std::ifstream in(path);
    std::string content;
    std::getline(in, content);
    EXPECT_EQ(content, "keep me") << (stream ? "stream" : "datagram");
  }
}

TEST(IngestServer, UnixSocketFilesNeverHaveMorePermissionsThanConfigured) {
  const mode_t saved = ::umask(0);  // the widest default: bind alone would make 0777
  Fixture f;
  IngestConfig c = Fixture::base();
  c.unix_datagram = UnixDatagramConfig{.path = f.dir.file("dgram.sock"), .mode = 0600};
  c.unix_stream = UnixStreamConfig{.path = f.dir.file("stream.sock"), .mode = 0620};
  // A watcher stats the paths while servers are created and destroyed; any
  // moment with wider permissions than configured is recorded.
  std::atomic<bool> done{false};
  std::atomic<unsigned> seen_dgram{0};
  std::atomic<unsigned> seen_stream{0};
  std::thread watcher([&] {
    struct stat st {};
    while (!done.load()) {
      if (::lstat(c.unix_datagram->path.c_str(), &st) == 0) seen_dgram.fetch_or(st.st_mode & 0777);
      if (::lstat(c.unix_stream->path.c_str(), &st) == 0) seen_stream.fetch_or(st.st_mode & 0777);
    }
  });
  bool all_created = true;
  for (int i = 0; i < 200 && all_created; ++i) {
    auto s = IngestServer::create(c, testing::memory_targets(f.store));
    all_created = s.has_value();
    if (i == 0 && s) {
      struct stat st {};
      EXPECT_EQ(::stat(c.unix_datagram->path.c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 0777, 0600u);
      EXPECT_EQ(::stat(c.unix_stream->path.c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 0777, 0620u);
    }
  }
  done = true;
  watcher.join();
  const mode_t during = ::umask(saved);
  EXPECT_TRUE(all_created);
  EXPECT_EQ(during, 0u) << "create() must restore the process umask";
  EXPECT_EQ(seen_dgram.load() & ~0600u, 0u) << std::oct << seen_dgram.load();
  EXPECT_EQ(seen_stream.load() & ~0620u, 0u) << std::oct << seen_stream.load();
}

// Shared between the test and a forked server whose descriptors run out.
struct AcceptProbe {
  std::atomic<std::uint16_t> port;
  std::atomic<int> limited;
  std::atomic<int> clients_connected;
  std::atomic<std::uint64_t> errors_in_window;
  std::atomic<std::int64_t> window_ms;
  std::atomic<std::uint64_t> accepted_after;
};

int run_starved_server(AcceptProbe* p) {
  ::alarm(30);  // never outlive a broken test
  auto store = std::make_shared<MemoryStore>();
  IngestConfig c = Fixture::base();
  c.tcp = TcpConfig{.port = 0};
  auto s = IngestServer::create(c, testing::memory_targets(store));
  if (!s || !(*s)->start()) return 10;
  IngestServer& server = **s;
  // The lowest free descriptor number: a limit equal to it makes every accept fail (EMFILE).
  const int lowest = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (lowest < 0) return 11;
  ::close(lowest);
  rlimit saved{};
  if (::getrlimit(RLIMIT_NOFILE, &saved) != 0) return 12;
  rlimit starved = saved;
  starved.rlim_cur = static_cast<rlim_t>(lowest);
  if (::setrlimit(RLIMIT_NOFILE, &starved) != 0) return 13;
  p->port = server.tcp_port();
  p->limited = 1;
  const auto& st = server.stats().tcp;
  if (!ringpipe::testing::wait_until([&] { return p->clients_connected.load() == 1; }, 10000ms)) return 14;
  if (!ringpipe::testing::wait_until([&] { return st.accept_errors.load() > 0; }, 5000ms)) return 15;
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(500ms);
  p->errors_in_window = st.accept_errors.load();
  p->window_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  if (::setrlimit(RLIMIT_NOFILE, &saved) != 0) return 16;
  // The waiting connections are taken once descriptors are back (within one backoff).
  (void)ringpipe::testing::wait_until([&] { return st.connections.load() == 3; }, 5000ms);  // checked by the test
  p->accepted_after = st.connections.load();
  server.stop();
  return 0;
}

TEST(IngestServer, BacksOffAfterAcceptErrorsInsteadOfSpinning) {
  spdlog::default_logger()->set_level(spdlog::level::err);  // the child's rate-limited warning is expected
  auto* p = ringpipe::testing::make_shared_block<AcceptProbe>();
  const pid_t child = ringpipe::testing::spawn([p] { return run_starved_server(p); });
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return p->limited.load() == 1; }, 10000ms));
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(testing::tcp_connect(p->port.load()));  // queued by the kernel, accepted later
    ASSERT_TRUE(clients.back().valid());
  }
  p->clients_connected = 1;
  EXPECT_EQ(ringpipe::testing::reap(child, std::chrono::seconds(30)), 0);
  spdlog::default_logger()->set_level(spdlog::level::info);
  // A busy loop fails thousands of times in the window; the backoff
  // (10, 20, 40, ... ms) allows about log2(window / 10 ms) + 1 failures.
  EXPECT_GT(p->errors_in_window.load(), 0u);
  EXPECT_LE(p->errors_in_window.load(), 12u) << "in " << p->window_ms.load() << " ms";
  EXPECT_EQ(p->accepted_after.load(), 3u);
}

TEST(IngestServer, StopsWhenRunIsInterruptedFromAnotherThread) {
  Fixture f;
  IngestConfig c = Fixture::base();
  c.udp = UdpConfig{.port = 0};
  c.tcp = TcpConfig{.port = 0};
  auto s = IngestServer::create(c, testing::memory_targets(f.store));
  ASSERT_TRUE(s);
  std::thread stopper([&] {
    std::this_thread::sleep_for(50ms);
    (*s)->stop();
  });
  EXPECT_TRUE((*s)->run());
  stopper.join();
}

// Voluntary context switches of every thread of this process but the caller's.
std::uint64_t other_threads_voluntary_switches() {
  const std::string self = std::to_string(::gettid());
  std::uint64_t total = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    if (e.path().filename() == self) continue;
    std::ifstream in(e.path() / "status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) total += std::stoull(line.substr(24));
    }
  }
  return total;
}

// A steady stream of one-line packets is read in bursts: the receive thread
// lets datagrams gather for a bounded time after each read, so it takes many
// per record and per wake-up, and the stream thread (TCP) is not woken by
// datagrams at all (the UDP socket is not in its epoll set).
TEST(IngestServer, SteadyStreamOfSmallPacketsTakesFewRecordsAndWakeUps) {
  Fixture f;
  IngestConfig c = Fixture::base();
  c.udp = UdpConfig{.port = 0};
  c.tcp = TcpConfig{.port = 0};
  f.start(c);
  auto fd = testing::udp_socket();
  ASSERT_TRUE(testing::send_udp(fd.get(), f.server->udp_port(), "warm:1|c"));
  ASSERT_TRUE(f.wait_written(1));
  const std::uint64_t records0 = f.store->record_count();
  const std::uint64_t switches0 = other_threads_voluntary_switches();
  constexpr int kPackets = 2000;
  for (int i = 0; i < kPackets; ++i) {  // one packet every ~20-100 us
    ASSERT_TRUE(testing::send_udp(fd.get(), f.server->udp_port(), "m:1|c"));
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  ASSERT_TRUE(f.wait_written(kPackets + 1));
  const std::uint64_t switches = other_threads_voluntary_switches() - switches0;
  const std::uint64_t records = f.store->record_count() - records0;
  f.server->stop();
  EXPECT_EQ(f.store->samples().size(), static_cast<std::size_t>(kPackets + 1));
  EXPECT_LE(records, kPackets / 4u) << "records for " << kPackets << " packets";
  EXPECT_LE(switches, kPackets / 4u) << "context switches for " << kPackets << " packets";
}

}  // namespace
}  // namespace ringpipe::ingest
