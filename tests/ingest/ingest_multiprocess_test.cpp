// Real processes on a real ring file: one process runs IngestServer on
// loopback (UDP, TCP, Unix datagram and stream), another reads the ring, and
// the test process sends the traffic. Every sample sent must be in the ring or
// counted as dropped (by the ring or by the kernel).

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "net_clients.hpp"
#include "ringpipe/ingest/ingest_server.hpp"
#include "ringpipe/ingest/ring_target.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/sample/sample_batch.hpp"
#include "ringpipe/stats/stats_segment.hpp"
#include "test_support.hpp"

namespace ringpipe::ingest {
namespace {

using namespace std::chrono_literals;
using ringpipe::testing::ScratchDir;
using ringpipe::testing::wait_until;

constexpr int kLinesPerPacket = 20;

// What the children report, in memory shared across fork.
struct Shared {
  std::atomic<int> server_ready;
  std::atomic<int> reader_ready;
  std::atomic<int> stop_server;
  std::atomic<int> server_done;
  std::atomic<int> stop_reader;
  std::atomic<std::uint16_t> udp_port;
  std::atomic<std::uint16_t> tcp_port;
  // server side
  std::atomic<std::uint64_t> samples_parsed;
  std::atomic<std::uint64_t> samples_written;
  std::atomic<std::uint64_t> samples_dropped;
  std::atomic<std::uint64_t> records_dropped;
  std::atomic<std::uint64_t> kernel_drops;  // datagrams
  std::atomic<std::uint64_t> malformed_lines;
  std::atomic<std::uint64_t> udp_packets;
  // reader side
  std::atomic<std::uint64_t> ring_samples;
  std::atomic<std::uint64_t> ring_records;
  std::atomic<std::uint64_t> ring_bad;
  std::atomic<std::uint64_t> per_source[4];  // udp, tcp, unixgram, unix stream
};

Shared* make_shared_block() { return ringpipe::testing::make_shared_block<Shared>(); }

using ringpipe::testing::reap;
using ringpipe::testing::spawn;

void publish_stats(const IngestStats& s, Shared* sh) {
  sh->samples_parsed = s.samples.load();
  sh->samples_written = s.samples_written.load();
  sh->samples_dropped = s.samples_dropped.load();
  sh->records_dropped = s.records_dropped.load();
  sh->kernel_drops = s.udp_kernel_drops_total() + s.unix_datagram_kernel_drops.load();
  sh->malformed_lines = s.parse_error(ParseError::kMalformedLine);
  sh->udp_packets = s.udp_packets.load();
}

struct ServerOptions {
  std::chrono::milliseconds claim_timeout{20};  // `block` rings: how long a claim waits for space
  std::string stats_path;                       // empty: no stats segment
};

int run_server(const std::string& ring_path, const std::string& dir, Shared* sh, const ServerOptions& so) {
  ::alarm(60);  // never outlive a broken test
  auto ring = ring::Ring::open(ring_path);
  if (!ring) return 10;
  IngestConfig c;
  c.name = "mp";
  c.source_id = 7;
  c.udp = UdpConfig{.port = 0, .sockets = 2};
  c.tcp = TcpConfig{.port = 0};
  c.unix_datagram = UnixDatagramConfig{.path = dir + "/dgram.sock"};
  c.unix_stream = UnixStreamConfig{.path = dir + "/stream.sock"};
  c.stats_path = so.stats_path;
  auto server =
      IngestServer::create(c, ring_target_factory(*ring, RingTargetOptions{.claim_timeout = so.claim_timeout}));
  if (!server) return 11;
  if (!(*server)->start()) return 12;
  sh->udp_port = (*server)->udp_port();
  sh->tcp_port = (*server)->tcp_port();
  sh->server_ready = 1;
  const auto deadline = std::chrono::steady_clock::now() + 40s;
  while (!sh->stop_server.load() && std::chrono::steady_clock::now() < deadline) {
    publish_stats((*server)->stats(), sh);
    std::this_thread::sleep_for(2ms);
  }
  (*server)->stop();
  publish_stats((*server)->stats(), sh);
  sh->server_done = 1;
  return 0;
}

int run_reader(const std::string& ring_path, Shared* sh, bool idle_until_stop) {
  ::alarm(60);
  auto ring = ring::Ring::open(ring_path);
  if (!ring) return 20;
  auto r = ring::Reader::attach(*ring, "check");
  if (!r) return 21;
  sh->reader_ready = 1;
  const auto deadline = std::chrono::steady_clock::now() + 40s;
  if (idle_until_stop) {  // a stalled reader: the ring fills up
    while (!sh->stop_reader.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(2ms);
  }
  auto consume = [&](const ring::RecordView& v) {
    sh->ring_records.fetch_add(1);
    if (v.type != sample::kSampleBatchRecord) {
      sh->ring_bad.fetch_add(1);
      return;
    }
    sample::BatchReader br(v.payload);
    if (br.header().source_id != 7) sh->ring_bad.fetch_add(1);
    while (auto s = br.next()) {
      sh->ring_samples.fetch_add(1);
      const std::string_view n = s->name;
      int source = n.starts_with("mp.udp")     ? 0
                   : n.starts_with("mp.tcp")   ? 1
                   : n.starts_with("mp.dgram") ? 2
                   : n.starts_with("mp.unix")  ? 3
                                               : -1;
      if (source < 0 || s->kind != sample::Kind::kCounter || s->value != 1.0 || s->tag_count != 1) {
        sh->ring_bad.fetch_add(1);
      } else {
        sh->per_source[source].fetch_add(1);
      }
    }
    if (br.error() != sample::DecodeError::kNone) sh->ring_bad.fetch_add(1);
  };
  // Read until told to stop, then until the ring stays empty for a while.
  auto quiet_since = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < deadline) {
    if (r->poll(consume) > 0) quiet_since = std::chrono::steady_clock::now();
    if (sh->stop_reader.load() && std::chrono::steady_clock::now() - quiet_since > 200ms) break;
    (void)r->wait(5ms);
  }
  return 0;
}

struct Traffic {
  std::uint64_t udp_packets = 100;
  std::uint64_t dgram_packets = 50;
  std::uint64_t tcp_lines = 2000;  // over two connections
  std::uint64_t unix_lines = 1000;
  [[nodiscard]] std::uint64_t samples() const {
    return (udp_packets + dgram_packets) * kLinesPerPacket + tcp_lines + unix_lines;
  }
};

std::string packet(const char* prefix, std::uint64_t n) {
  std::string p;
  for (int i = 0; i < kLinesPerPacket; ++i) {
    p += std::string(prefix) + "." + std::to_string((n * kLinesPerPacket + i) % 97) + ":1|c|#src:" + prefix + "\n";
  }
  p += "bad line without colon\n";
  return p;
}

void send_traffic(const Traffic& t, Shared* sh, const std::string& dir) {
  auto udp = testing::udp_socket();
  for (std::uint64_t i = 0; i < t.udp_packets; ++i)
    ASSERT_TRUE(testing::send_udp(udp.get(), sh->udp_port, packet("mp.udp", i)));
  auto dg = testing::unixgram_socket();
  for (std::uint64_t i = 0; i < t.dgram_packets; ++i) {
    // A full Unix datagram queue makes sendto wait (SO_SNDTIMEO bounds it): retry briefly.
    bool sent = false;
    for (int k = 0; k < 100 && !sent; ++k)
      sent = testing::send_unixgram(dg.get(), dir + "/dgram.sock", packet("mp.dgram", i));
    ASSERT_TRUE(sent);
  }
  auto tcp1 = testing::tcp_connect(sh->tcp_port);
  auto tcp2 = testing::tcp_connect(sh->tcp_port);
  auto ux = testing::unix_connect(dir + "/stream.sock");
  ASSERT_TRUE(tcp1.valid() && tcp2.valid() && ux.valid());
  std::string a, b, u;
  for (std::uint64_t i = 0; i < t.tcp_lines; ++i)
    (i % 2 ? a : b) += "mp.tcp." + std::to_string(i % 13) + ":1|c|#src:tcp\n";
  for (std::uint64_t i = 0; i < t.unix_lines; ++i) u += "mp.unix." + std::to_string(i % 13) + ":1|c|#src:unix\n";
  ASSERT_TRUE(testing::send_all(tcp1.get(), a));
  ASSERT_TRUE(testing::send_all(tcp2.get(), b));
  ASSERT_TRUE(testing::send_all(ux.get(), u));
}

struct Outcome {
  Shared* sh;
  Traffic traffic;
  double segment_ring_dropped = -1;  // source_ring_dropped_samples_total at stop; -1: no segment
};

// The value of one unlabelled entry of a stats segment, or -1 when absent.
double segment_value(const std::string& path, std::string_view name) {
  auto r = stats::StatsReader::open(path);
  if (!r) return -1;
  for (const stats::StatsEntry& e : r->snapshot()) {
    if (e.name == name && e.labels.empty()) return e.value();
  }
  return -1;
}

Outcome run_pipeline(ring::Overflow overflow, std::uint64_t lane_bytes, bool stalled_reader, Traffic traffic,
                     ServerOptions so = {}, bool with_stats = false) {
  // The logger registry is a lazily built static: build it before fork, while
  // this process has one thread, so children inherit it fully made.
  spdlog::default_logger()->set_level(spdlog::level::warn);
  ScratchDir dir;
  const std::string ring_path = dir.file("raw.ring");
  ring::RingOptions o;
  o.lane_capacity_bytes = lane_bytes;
  o.lanes = 8;
  o.overflow = overflow;
  EXPECT_TRUE(ring::Ring::create(ring_path, o));
  Shared* sh = make_shared_block();
  const pid_t reader = spawn([&] { return run_reader(ring_path, sh, stalled_reader); });
  EXPECT_TRUE(wait_until([&] { return sh->reader_ready.load() == 1; }, 10000ms));
  if (with_stats) so.stats_path = dir.file("mp.stats");
  const pid_t server = spawn([&] { return run_server(ring_path, dir.path().string(), sh, so); });
  EXPECT_TRUE(wait_until([&] { return sh->server_ready.load() == 1; }, 10000ms));
  send_traffic(traffic, sh, dir.path().string());
  // Everything sent is accounted for once parsed samples stop growing at the total.
  const std::uint64_t expected = traffic.samples();
  EXPECT_TRUE(wait_until(
      [&] {
        return sh->samples_written.load() + sh->samples_dropped.load() + sh->kernel_drops.load() * kLinesPerPacket >=
               expected;
      },
      15000ms));
  sh->stop_server = 1;
  EXPECT_EQ(reap(server), 0);
  sh->stop_reader = 1;
  EXPECT_EQ(reap(reader), 0);
  Outcome out{sh, traffic};
  if (with_stats) out.segment_ring_dropped = segment_value(so.stats_path, "source_ring_dropped_samples_total");
  return out;
}

TEST(IngestMultiprocess, EverySampleSentIsInTheRingOrCountedAsDropped) {
  const Outcome r = run_pipeline(ring::Overflow::kBlock, 1u << 20, false, Traffic{});
  Shared* sh = r.sh;
  EXPECT_EQ(sh->ring_bad.load(), 0u);
  EXPECT_EQ(sh->ring_samples.load(), sh->samples_written.load());
  EXPECT_EQ(r.traffic.samples(),
            sh->ring_samples.load() + sh->samples_dropped.load() + sh->kernel_drops.load() * kLinesPerPacket);
  // One bad line per datagram: counted, never in the ring.
  EXPECT_EQ(sh->malformed_lines.load(), (r.traffic.udp_packets + r.traffic.dgram_packets) - sh->kernel_drops.load());
  // A reader that keeps up on loopback loses nothing, and every transport arrived.
  EXPECT_EQ(sh->samples_dropped.load(), 0u);
  EXPECT_EQ(sh->per_source[1].load(), r.traffic.tcp_lines);
  EXPECT_EQ(sh->per_source[3].load(), r.traffic.unix_lines);
  EXPECT_EQ(sh->per_source[0].load() + sh->per_source[2].load(),
            (r.traffic.udp_packets + r.traffic.dgram_packets - sh->kernel_drops.load()) * kLinesPerPacket);
  // Batching: far fewer records than samples.
  EXPECT_LT(sh->ring_records.load() * 5, sh->ring_samples.load());
}

TEST(IngestMultiprocess, CountsSamplesRefusedByAFullDropRing) {
  const Outcome r = run_pipeline(ring::Overflow::kDrop, 16 * 1024, true, Traffic{}, ServerOptions{}, true);
  Shared* sh = r.sh;
  EXPECT_EQ(sh->ring_bad.load(), 0u);
  EXPECT_GT(sh->samples_dropped.load(), 0u);
  EXPECT_GT(sh->records_dropped.load(), 0u);
  EXPECT_EQ(sh->ring_samples.load(), sh->samples_written.load());
  EXPECT_EQ(r.traffic.samples(),
            sh->ring_samples.load() + sh->samples_dropped.load() + sh->kernel_drops.load() * kLinesPerPacket);
  // Another process sees the drops of this source in its stats segment, exactly.
  EXPECT_GT(r.segment_ring_dropped, 0);
  EXPECT_EQ(r.segment_ring_dropped, static_cast<double>(sh->samples_dropped.load()));
}

TEST(IngestMultiprocess, CountsSamplesRefusedByABlockRingPastTheClaimTimeout) {
  // The reader sleeps until the traffic is done, so the small ring fills up
  // and every later claim waits its 5 ms and gives up.
  const Outcome r = run_pipeline(ring::Overflow::kBlock, 16 * 1024, true, Traffic{},
                                 ServerOptions{.claim_timeout = 5ms, .stats_path = {}}, true);
  Shared* sh = r.sh;
  EXPECT_EQ(sh->ring_bad.load(), 0u);
  EXPECT_GT(sh->samples_dropped.load(), 0u);
  EXPECT_GT(sh->records_dropped.load(), 0u);
  EXPECT_GT(sh->ring_samples.load(), 0u);  // what fit before the ring filled is all there
  EXPECT_EQ(sh->ring_samples.load(), sh->samples_written.load());
  EXPECT_EQ(r.traffic.samples(),
            sh->ring_samples.load() + sh->samples_dropped.load() + sh->kernel_drops.load() * kLinesPerPacket);
  EXPECT_EQ(r.segment_ring_dropped, static_cast<double>(sh->samples_dropped.load()));
}

}  // namespace
}  // namespace ringpipe::ingest
