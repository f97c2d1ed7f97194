// JSON lines across real processes: one process runs a `json` IngestServer on
// TCP and a Unix stream socket writing into a real ring file, another reads
// the ring, and the test sends real traffic — lines split across writes,
// malformed lines, an overlong line — then checks every sample exactly.

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
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

constexpr std::int64_t kBaseMs = 1'700'000'000'000;
constexpr int kConnections = 3;  // two TCP, one Unix stream

struct Shared {
  std::atomic<int> server_ready;
  std::atomic<int> reader_ready;
  std::atomic<int> stop_server;
  std::atomic<int> stop_reader;
  std::atomic<std::uint16_t> tcp_port;
  std::atomic<std::uint64_t> lines;
  std::atomic<std::uint64_t> samples_written;
  std::atomic<std::uint64_t> invalid_json;
  std::atomic<std::uint64_t> missing_value;
  std::atomic<std::uint64_t> line_too_long;
  std::atomic<std::uint64_t> skipped_fields;
  std::atomic<std::uint64_t> ring_samples;
  std::atomic<std::uint64_t> ring_records;
  std::atomic<std::uint64_t> ring_bad;
  std::atomic<std::uint64_t> per_connection[kConnections];
  std::atomic<std::uint64_t> value_sum[kConnections];
};

void publish(const IngestStats& s, Shared* sh) {
  sh->lines = s.lines.load();
  sh->samples_written = s.samples_written.load();
  sh->invalid_json = s.parse_error(ParseError::kInvalidJson);
  sh->missing_value = s.parse_error(ParseError::kMissingValue);
  sh->line_too_long = s.parse_error(ParseError::kLineTooLong);
  sh->skipped_fields = s.skipped_fields.load();
}

int run_server(const std::string& ring_path, const std::string& dir, Shared* sh) {
  ::alarm(60);
  auto ring = ring::Ring::open(ring_path);
  if (!ring) return 10;
  IngestConfig c;
  c.name = "json";
  c.source_id = 3;
  c.parser.protocol = Protocol::kJson;
  c.parser.json.name_field = "sensor";
  c.parser.json.timestamp_field = "ts";
  c.parser.json.timestamp_precision = Precision::kMilliseconds;
  c.parser.json.kind = sample::Kind::kCounter;
  c.parser.json.max_line_bytes = 512;
  c.tcp = TcpConfig{.port = 0, .max_line_bytes = 512};
  c.unix_stream = UnixStreamConfig{.path = dir + "/json.sock", .max_line_bytes = 512};
  auto server = IngestServer::create(c, ring_target_factory(*ring));
  if (!server) return 11;
  if (!(*server)->start()) return 12;
  sh->tcp_port = (*server)->tcp_port();
  sh->server_ready = 1;
  const auto deadline = std::chrono::steady_clock::now() + 40s;
  while (!sh->stop_server.load() && std::chrono::steady_clock::now() < deadline) {
    publish((*server)->stats(), sh);
    std::this_thread::sleep_for(2ms);
  }
  (*server)->stop();
  publish((*server)->stats(), sh);
  return 0;
}

// Checks each sample against what the sender wrote for its value.
int run_reader(const std::string& ring_path, Shared* sh) {
  ::alarm(60);
  auto ring = ring::Ring::open(ring_path);
  if (!ring) return 20;
  auto r = ring::Reader::attach(*ring, "check");
  if (!r) return 21;
  sh->reader_ready = 1;
  auto consume = [&](const ring::RecordView& v) {
    sh->ring_records.fetch_add(1);
    sample::BatchReader br(v.payload);
    if (v.type != sample::kSampleBatchRecord || br.header().source_id != 3) sh->ring_bad.fetch_add(1);
    while (auto s = br.next()) {
      sh->ring_samples.fetch_add(1);
      const auto value = static_cast<std::int64_t>(s->value);
      std::string conn, site, ok;
      int ntags = 0;
      s->for_each_tag([&](sample::Tag t) {
        ++ntags;
        if (t.key == "conn") conn = t.value;
        if (t.key == "site") site = t.value;
        if (t.key == "ok") ok = t.value;
      });
      const int c = conn.size() == 1 ? conn[0] - '0' : -1;
      const bool good = s->kind == sample::Kind::kCounter && c >= 0 && c < kConnections && ntags == 3 &&
                        site == "lab" && ok == "true" && s->name == "t" + std::to_string(value % 10) &&
                        s->timestamp_ns == (kBaseMs + value) * 1'000'000 && s->sample_rate == 1.0;
      if (!good) {
        sh->ring_bad.fetch_add(1);
        continue;
      }
      sh->per_connection[c].fetch_add(1);
      sh->value_sum[c].fetch_add(static_cast<std::uint64_t>(value));
    }
    if (br.error() != sample::DecodeError::kNone) sh->ring_bad.fetch_add(1);
  };
  const auto deadline = std::chrono::steady_clock::now() + 40s;
  auto quiet_since = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < deadline) {
    if (r->poll(consume) > 0) quiet_since = std::chrono::steady_clock::now();
    if (sh->stop_reader.load() && std::chrono::steady_clock::now() - quiet_since > 200ms) break;
    (void)r->wait(5ms);
  }
  return 0;
}

// `n` good lines for connection `c` (values 0..n-1), with a malformed line
// and a line without a value after every 100th.
std::string traffic(int c, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    out += R"({"sensor":"t)" + std::to_string(i % 10) + R"(","value":)" + std::to_string(i) + R"(,"ts":)" +
           std::to_string(kBaseMs + i) + R"(,"site":"lab","conn":")" + std::to_string(c) +
           R"(","ok":true,"meta":{"fw":"1.2"}})" + "\r\n";
    if (i % 100 == 99) out += "{\"sensor\":\"t1\",\"value\":\n{\"sensor\":\"t1\"}\n";
  }
  return out;
}

// Sends in pieces of odd sizes, so lines are split across reads.
bool send_in_pieces(int fd, std::string_view data) {
  std::size_t piece = 1;
  while (!data.empty()) {
    const std::size_t n = std::min(data.size(), piece);
    if (!testing::send_all(fd, data.substr(0, n))) return false;
    data.remove_prefix(n);
    piece = piece * 7 % 1999 + 1;
  }
  return true;
}

TEST(JsonMultiprocess, EveryLineSentOverTcpAndUnixArrivesExactlyAndBadLinesAreCounted) {
  spdlog::default_logger()->set_level(spdlog::level::warn);
  ScratchDir dir;
  const std::string ring_path = dir.file("raw.ring");
  ring::RingOptions o;
  o.lane_capacity_bytes = 1u << 20;
  o.lanes = 4;
  ASSERT_TRUE(ring::Ring::create(ring_path, o));
  Shared* sh = ringpipe::testing::make_shared_block<Shared>();
  const pid_t reader = ringpipe::testing::spawn([&] { return run_reader(ring_path, sh); });
  ASSERT_TRUE(wait_until([&] { return sh->reader_ready.load() == 1; }, 10000ms));
  const pid_t server = ringpipe::testing::spawn([&] { return run_server(ring_path, dir.path().string(), sh); });
  ASSERT_TRUE(wait_until([&] { return sh->server_ready.load() == 1; }, 10000ms));

  constexpr int kLines = 1000;
  auto tcp0 = testing::tcp_connect(sh->tcp_port);
  auto tcp1 = testing::tcp_connect(sh->tcp_port);
  auto ux = testing::unix_connect(dir.file("json.sock"));
  ASSERT_TRUE(tcp0.valid() && tcp1.valid() && ux.valid());
  ASSERT_TRUE(send_in_pieces(tcp0.get(), traffic(0, kLines)));
  ASSERT_TRUE(testing::send_all(tcp1.get(), traffic(1, kLines)));
  // An overlong line is skipped and counted; the connection carries on.
  ASSERT_TRUE(testing::send_all(ux.get(), "{\"pad\":\"" + std::string(2000, 'x') + "\"}\n"));
  ASSERT_TRUE(send_in_pieces(ux.get(), traffic(2, kLines)));
  tcp0.reset();
  tcp1.reset();
  ux.reset();

  constexpr std::uint64_t kGood = 3 * kLines;
  EXPECT_TRUE(wait_until([&] { return sh->samples_written.load() >= kGood; }, 15000ms));
  sh->stop_server = 1;
  EXPECT_EQ(ringpipe::testing::reap(server), 0);
  sh->stop_reader = 1;
  EXPECT_EQ(ringpipe::testing::reap(reader), 0);

  EXPECT_EQ(sh->ring_bad.load(), 0u);
  EXPECT_EQ(sh->ring_samples.load(), kGood);
  EXPECT_EQ(sh->samples_written.load(), kGood);
  constexpr std::uint64_t kSum = std::uint64_t{kLines} * (kLines - 1) / 2;
  for (int c = 0; c < kConnections; ++c) {
    EXPECT_EQ(sh->per_connection[c].load(), std::uint64_t{kLines}) << "connection " << c;
    EXPECT_EQ(sh->value_sum[c].load(), kSum) << "connection " << c;
  }
  EXPECT_EQ(sh->invalid_json.load(), 3u * kLines / 100);
  EXPECT_EQ(sh->missing_value.load(), 3u * kLines / 100);
  EXPECT_EQ(sh->line_too_long.load(), 1u);
  EXPECT_EQ(sh->skipped_fields.load(), kGood);  // each "meta" object
  EXPECT_EQ(sh->lines.load(), kGood + 2u * 3 * kLines / 100);
  // One claim per read batch: a read holding several lines is one record.
  EXPECT_LT(sh->ring_records.load(), sh->ring_samples.load());
}

}  // namespace
}  // namespace ringpipe::ingest
