// RemoteWriteSource into a real ring through the production RingTarget: one
// record per request, and a full `drop` ring answered 503 with nothing of the
// refused request in the ring.

#include <gtest/gtest.h>

#include "parse_harness.hpp"
#include "remote_write_test_util.hpp"
#include "ringpipe/ingest/remote_write_source.hpp"
#include "ringpipe/ingest/ring_target.hpp"
#include "ringpipe/ring/ring.hpp"
#include "test_support.hpp"

namespace ringpipe::ingest {
namespace {

using testing::add_series;
using testing::encode;
using testing::post;

constexpr std::int64_t kT0 = 1'700'000'000'000;

// `n` series of one sample each, values first..first+n-1.
std::string request(int n, int first) {
  prometheus::WriteRequest req;
  for (int i = 0; i < n; ++i)
    add_series(req, {{"__name__", "m"}, {"i", std::to_string(first + i)}, {"job", "ring"}}, {{1.0 * (first + i), kT0}});
  return encode(req);
}

struct OnRing {
  ringpipe::testing::ScratchDir dir;
  std::optional<ring::Ring> ring;
  std::optional<ring::Reader> reader;
  std::unique_ptr<RemoteWriteSource> source;
  std::unique_ptr<net::HttpClient> client;

  explicit OnRing(std::uint64_t lane_bytes) {
    ring::RingOptions o;
    o.lane_capacity_bytes = lane_bytes;
    o.lanes = 2;
    o.overflow = ring::Overflow::kDrop;
    auto r = ring::Ring::create(dir.file("raw"), o);
    if (!r) {
      ADD_FAILURE() << r.error().message();
      return;
    }
    ring.emplace(std::move(*r));
    auto rd = ring::Reader::attach(*ring, "check");  // gates the producer until it reads
    if (!rd) {
      ADD_FAILURE() << rd.error().message();
      return;
    }
    reader.emplace(std::move(*rd));
    RemoteWriteConfig c;
    c.port = 0;
    RingTargetOptions t;
    t.claim_bytes = 4096;  // the default claim; a request asks for more
    t.claim_timeout = std::chrono::milliseconds(0);
    auto s = RemoteWriteSource::create(c, ring_target_factory(*ring, t));
    if (!s) {
      ADD_FAILURE() << s.error().message();
      return;
    }
    source = std::move(*s);
    EXPECT_TRUE(source->start());
    client = std::make_unique<net::HttpClient>(net::HttpUrl{"127.0.0.1", std::to_string(source->port()), "/"});
  }

  // Every record in the ring now: samples per record.
  std::vector<std::size_t> drain() {
    std::vector<std::size_t> records;
    reader->poll([&](const ring::RecordView& v) { records.push_back(testing::decode(v.payload).size()); });
    return records;
  }
};

TEST(RemoteWriteOnARing, WritesARequestLargerThanTheDefaultClaimAsOneRecord) {
  OnRing r(1u << 20);  // max_record = 256 KiB
  ASSERT_TRUE(r.source);
  EXPECT_EQ(post(*r.client, request(500, 0)).status, 204);
  EXPECT_EQ(r.drain(), std::vector<std::size_t>{500});
  EXPECT_EQ(r.source->stats().records_written.load(), 1u);
}

TEST(RemoteWriteOnARing, AnswersAFullDropRingWith503AndLeavesNothingOfThatRequest) {
  OnRing r(64u << 10);  // 16 KiB records; the unread reader fills the lane in a few requests
  ASSERT_TRUE(r.source);
  int accepted = 0;
  int status = 0;
  for (int i = 0; i < 100; ++i) {
    status = post(*r.client, request(50, i * 50)).status;
    if (status != 204) break;
    ++accepted;
  }
  ASSERT_EQ(status, 503);
  ASSERT_GT(accepted, 0);
  const std::vector<std::size_t> records = r.drain();
  EXPECT_EQ(records, std::vector<std::size_t>(static_cast<std::size_t>(accepted), 50));  // one record per request
  EXPECT_EQ(r.source->stats().samples_dropped.load(), 50u);
  EXPECT_EQ(r.ring->stats().lane.at(0).dropped_records + r.ring->stats().lane.at(1).dropped_records, 1u);
  // Read: there is room again, and the refused request goes through on retry.
  EXPECT_EQ(post(*r.client, request(50, accepted * 50)).status, 204);
  EXPECT_EQ(r.drain(), std::vector<std::size_t>{50});
}

}  // namespace
}  // namespace ringpipe::ingest
