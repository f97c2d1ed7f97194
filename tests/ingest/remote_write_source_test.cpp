// RemoteWriteSource over loopback HTTP into memory targets: what lands in the
// batches, every protocol answer and the counter behind it.

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <string>

#include "memory_target.hpp"
#include "net_clients.hpp"
#include "remote_write_test_util.hpp"
#include "ringpipe/ingest/remote_write_source.hpp"
#include "test_support.hpp"

namespace ringpipe::ingest {
namespace {

using namespace std::chrono_literals;
using testing::add_series;
using testing::encode;
using testing::MemoryStore;
using testing::post;
using Tags = testing::Tags;

constexpr std::int64_t kT0 = 1'700'000'000'000;  // ms

struct Receiver {
  std::shared_ptr<MemoryStore> store = std::make_shared<MemoryStore>();
  std::unique_ptr<RemoteWriteSource> source;
  std::unique_ptr<net::HttpClient> client;

  explicit Receiver(RemoteWriteConfig c = {}, std::size_t claim_bytes = 64 * 1024, std::size_t max_record = 1 << 20) {
    store->claim_bytes = claim_bytes;
    store->max_record_bytes = max_record;
    c.port = 0;
    auto s = RemoteWriteSource::create(c, testing::memory_targets(store));
    if (!s) ADD_FAILURE() << s.error().message();
    source = std::move(*s);
    EXPECT_TRUE(source->start());
    client = std::make_unique<net::HttpClient>(net::HttpUrl{"127.0.0.1", std::to_string(source->port()), "/"});
  }
  const IngestStats& stats() const { return source->stats(); }
  const RemoteWriteStats& rw() const { return source->remote_write_stats(); }
  std::uint64_t err(ParseError e) const { return stats().parse_error(e); }
};

TEST(RemoteWriteSource, WritesEverySeriesAsGaugeSetsWithTheirTimestampsInOneClaim) {
  Receiver r;
  prometheus::WriteRequest req;
  add_series(req, {{"__name__", "up"}, {"instance", "a:9090"}, {"job", "node"}}, {{1, kT0}, {0, kT0 + 15000}});
  add_series(req, {{"__name__", "http_requests_total"}, {"code", "200"}, {"empty", ""}}, {{1234.5, kT0}});
  const auto res = post(*r.client, encode(req));
  EXPECT_EQ(res.status, 204) << res.body;
  EXPECT_TRUE(res.body.empty());
  ASSERT_EQ(r.store->record_count(), 1u);  // one claim for the request
  const auto got = r.store->samples();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].kind, sample::Kind::kGauge);
  EXPECT_EQ(got[0].name, "up");
  EXPECT_EQ(got[0].value, 1);
  EXPECT_EQ(got[0].ts, kT0 * 1'000'000);
  EXPECT_EQ(got[0].tags, (Tags{{"instance", "a:9090"}, {"job", "node"}}));
  EXPECT_EQ(got[1].value, 0);
  EXPECT_EQ(got[1].ts, (kT0 + 15000) * 1'000'000);
  EXPECT_EQ(got[2].name, "http_requests_total");
  EXPECT_EQ(got[2].kind, sample::Kind::kGauge);  // remote_write carries no types: the exact value is set
  EXPECT_EQ(got[2].value, 1234.5);
  EXPECT_EQ(got[2].tags, (Tags{{"code", "200"}}));  // an empty value is the label's absence
  EXPECT_EQ(r.stats().lines.load(), 2u);
  EXPECT_EQ(r.stats().samples_written.load(), 3u);
  EXPECT_EQ(r.stats().records_written.load(), 1u);
  EXPECT_EQ(r.rw().requests.load(), 1u);
  EXPECT_EQ(r.rw().answered(RemoteWriteAnswer::k204), 1u);
  EXPECT_EQ(r.rw().bytes.load(), encode(req).size());
}

TEST(RemoteWriteSource, SortsLabelsTheSenderLeftUnsorted) {
  Receiver r;
  prometheus::WriteRequest req;
  add_series(req, {{"zone", "z"}, {"__name__", "m"}, {"app", "a"}}, {{2, kT0}});
  EXPECT_EQ(post(*r.client, encode(req)).status, 204);
  const auto got = r.store->samples();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].tags, (Tags{{"app", "a"}, {"zone", "z"}}));
}

TEST(RemoteWriteSource, AnswersUndecodableSnappyWith400AndCountsIt) {
  Receiver r;
  const auto res = post(*r.client, "this is not snappy \xff\xff\xff\xff\xff");
  EXPECT_EQ(res.status, 400);
  EXPECT_NE(res.body.find("snappy"), std::string::npos) << res.body;
  EXPECT_EQ(r.err(ParseError::kBadSnappy), 1u);
  EXPECT_EQ(r.rw().answered(RemoteWriteAnswer::k400), 1u);
  EXPECT_EQ(r.store->record_count(), 0u);
  // The connection stays usable.
  prometheus::WriteRequest req;
  add_series(req, {{"__name__", "m"}}, {{1, kT0}});
  EXPECT_EQ(post(*r.client, encode(req)).status, 204);
  EXPECT_EQ(r.source->stats().tcp.connections.load(), 1u);
}

TEST(RemoteWriteSource, AnswersUnparsableProtobufWith400AndCountsIt) {
  Receiver r;
  // Field 1 (timeseries), length-delimited, claiming 100 bytes that are not there.
  const std::string raw("\x0a\x64\x01\x02", 4);
  const auto res = post(*r.client, testing::snappy_of(raw));
  EXPECT_EQ(res.status, 400);
  EXPECT_NE(res.body.find("protobuf"), std::string::npos) << res.body;
  EXPECT_EQ(r.err(ParseError::kBadProtobuf), 1u);
  EXPECT_EQ(r.err(ParseError::kBadSnappy), 0u);
  EXPECT_EQ(r.store->record_count(), 0u);
}

TEST(RemoteWriteSource, AnswersABodyOverTheLimitWith413AndCountsIt) {
  RemoteWriteConfig c;
  c.max_body_bytes = 1024;
  Receiver r(c);
  prometheus::WriteRequest req;
  for (int i = 0; i < 200; ++i) add_series(req, {{"__name__", "m" + std::to_string(i)}}, {{1.0 * i, kT0}});
  const std::string body = encode(req);
  ASSERT_GT(body.size(), 1024u);
  const auto res = post(*r.client, body);
  EXPECT_EQ(res.status, 413) << res.body;
  EXPECT_EQ(r.err(ParseError::kBodyTooLarge), 1u);
  EXPECT_EQ(r.rw().answered(RemoteWriteAnswer::k413), 1u);
  EXPECT_EQ(r.store->record_count(), 0u);
  // A small request afterwards is served (on a new connection: the big one was closed).
  prometheus::WriteRequest small;
  add_series(small, {{"__name__", "m"}}, {{1, kT0}});
  EXPECT_EQ(post(*r.client, encode(small)).status, 204);
}

TEST(RemoteWriteSource, AnswersAnUncompressedSizeOverTheLimitWith413) {
  RemoteWriteConfig c;
  c.max_body_bytes = 4096;  // uncompressed at most 32 KiB
  Receiver r(c);
  const std::string raw(64 * 1024, '\0');  // snappy squeezes this to about 3 KiB
  const std::string body = testing::snappy_of(raw);
  ASSERT_LT(body.size(), 4096u);
  EXPECT_EQ(post(*r.client, body).status, 413);
  EXPECT_EQ(r.err(ParseError::kBodyTooLarge), 1u);
}

TEST(RemoteWriteSource, RejectsInvalidSeriesByReasonWritesTheRestAndAnswers400) {
  RemoteWriteConfig c;
  c.max_labels = 2;
  Receiver r(c);
  prometheus::WriteRequest req;
  add_series(req, {{"__name__", "good"}, {"a", "1"}, {"b", "2"}}, {{1, kT0}});
  add_series(req, {{"job", "no_name"}}, {{1, kT0}});
  add_series(req, {{"__name__", "1starts_with_digit"}}, {{1, kT0}});
  add_series(req, {{"__name__", "dup"}, {"a", "1"}, {"a", "2"}}, {{1, kT0}});
  add_series(req, {{"__name__", "dup_name"}, {"__name__", "again"}}, {{1, kT0}});
  add_series(req, {{"__name__", "many"}, {"a", "1"}, {"b", "2"}, {"c", "3"}}, {{1, kT0}});
  add_series(req, {{"__name__", "badlabel"}, {"a-b", "1"}}, {{1, kT0}});
  add_series(req, {{"__name__", "badutf8"}, {"a", "\xc3\x28"}}, {{1, kT0}});
  add_series(req, {{"__name__", "also_good"}}, {{2, kT0}, {std::nan(""), kT0 + 1}, {3, 0}});
  const auto res = post(*r.client, encode(req));
  EXPECT_EQ(res.status, 400);
  EXPECT_NE(res.body.find("7 of 9 series rejected (first: missing_name)"), std::string::npos) << res.body;
  EXPECT_EQ(r.err(ParseError::kMissingName), 1u);
  EXPECT_EQ(r.err(ParseError::kInvalidMetricName), 1u);
  EXPECT_EQ(r.err(ParseError::kDuplicateLabel), 2u);
  EXPECT_EQ(r.err(ParseError::kTooManyLabels), 1u);
  EXPECT_EQ(r.err(ParseError::kInvalidLabelName), 1u);
  EXPECT_EQ(r.err(ParseError::kInvalidUtf8), 1u);
  EXPECT_EQ(r.err(ParseError::kNonFiniteValue), 1u);      // NaN (a staleness marker too) is dropped
  EXPECT_EQ(r.err(ParseError::kMalformedTimestamp), 1u);  // 0 ms: not a time
  EXPECT_EQ(r.stats().lines.load(), 9u);
  const auto got = r.store->samples();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].name, "good");
  EXPECT_EQ(got[0].tags, (Tags{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(got[1].name, "also_good");
  EXPECT_EQ(got[1].value, 2);
  EXPECT_EQ(r.rw().answered(RemoteWriteAnswer::k400), 1u);
}

TEST(RemoteWriteSource, AnswersOtherMethodsWith405AndOtherPathsWith404) {
  Receiver r;
  auto res = post(*r.client, "", "/api/v1/write", "GET");
  EXPECT_EQ(res.status, 405);
  res = post(*r.client, "", "/api/v1/write", "PUT");
  EXPECT_EQ(res.status, 405);
  res = post(*r.client, "x", "/other");
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(r.rw().answered(RemoteWriteAnswer::k405), 2u);
  EXPECT_EQ(r.rw().answered(RemoteWriteAnswer::k404), 1u);
  EXPECT_EQ(r.rw().requests.load(), 0u);  // refused before the body
}

TEST(RemoteWriteSource, AnswersAnotherEncodingOrContentTypeWith415) {
  Receiver r;
  prometheus::WriteRequest req;
  add_series(req, {{"__name__", "m"}}, {{1, kT0}});
  auto res = post(*r.client, encode(req), "/api/v1/write", "POST", {{"Content-Encoding", "gzip"}});
  EXPECT_EQ(res.status, 415);
  res = post(*r.client, encode(req), "/api/v1/write", "POST", {{"Content-Type", "application/json"}});
  EXPECT_EQ(res.status, 415);
  EXPECT_EQ(r.err(ParseError::kUnsupportedMediaType), 2u);
  EXPECT_EQ(r.rw().answered(RemoteWriteAnswer::k415), 2u);
  // Without the headers the body is still taken as snappy protobuf.
  EXPECT_EQ(post(*r.client, encode(req), "/api/v1/write", "POST", {}).status, 204);
  EXPECT_EQ(r.store->samples().size(), 1u);
}

TEST(RemoteWriteSource, AnswersRingRefusalWith503AndWritesNothingOfThatRequest) {
  Receiver r;
  prometheus::WriteRequest req;
  add_series(req, {{"__name__", "a"}}, {{1, kT0}, {2, kT0 + 1}});
  add_series(req, {{"__name__", "b"}}, {{3, kT0}});
  r.store->refuse = true;
  const auto res = post(*r.client, encode(req));
  EXPECT_EQ(res.status, 503) << res.body;
  EXPECT_EQ(r.store->record_count(), 0u);
  EXPECT_EQ(r.stats().samples_dropped.load(), 3u);
  EXPECT_EQ(r.stats().records_dropped.load(), 1u);
  EXPECT_EQ(r.store->dropped_records.load(), 1u);
  EXPECT_EQ(r.rw().answered(RemoteWriteAnswer::k503), 1u);
  // The sender retries the same request once the ring has room.
  r.store->refuse = false;
  EXPECT_EQ(post(*r.client, encode(req)).status, 204);
  EXPECT_EQ(r.store->samples().size(), 3u);
}

TEST(RemoteWriteSource, ClaimsOneRecordLargeEnoughForTheWholeRequest) {
  Receiver r({}, 4096, 1 << 20);
  prometheus::WriteRequest req;
  for (int i = 0; i < 500; ++i)
    add_series(req, {{"__name__", "series_" + std::to_string(i)}, {"job", "j"}}, {{1.0 * i, kT0}});
  EXPECT_EQ(post(*r.client, encode(req)).status, 204);
  EXPECT_EQ(r.store->record_count(), 1u);
  EXPECT_EQ(r.store->samples().size(), 500u);
}

TEST(RemoteWriteSource, ContinuesARequestLargerThanTheLargestRecordInFurtherRecords) {
  Receiver r({}, 4096, 4096);
  prometheus::WriteRequest req;
  for (int i = 0; i < 500; ++i)
    add_series(req, {{"__name__", "series_" + std::to_string(i)}, {"job", "j"}}, {{1.0 * i, kT0}});
  EXPECT_EQ(post(*r.client, encode(req)).status, 204);
  EXPECT_GT(r.store->record_count(), 1u);
  const auto got = r.store->samples();
  ASSERT_EQ(got.size(), 500u);
  for (int i = 0; i < 500; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)].value, 1.0 * i);
}

TEST(RemoteWriteSource, ClosesConnectionsOverTheLimitAndIdleOnes) {
  RemoteWriteConfig c;
  c.max_connections = 1;
  c.idle_timeout = 200ms;
  Receiver r(c);
  prometheus::WriteRequest req;
  add_series(req, {{"__name__", "m"}}, {{1, kT0}});
  EXPECT_EQ(post(*r.client, encode(req)).status, 204);
  const UniqueFd second = testing::tcp_connect(r.source->port());
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return r.stats().tcp.connections_rejected.load() == 1; }, 5000ms));
  ASSERT_TRUE(ringpipe::testing::wait_until(
      [&] { return r.stats().tcp.idle_closed.load(std::memory_order_acquire) == 1; }, 5000ms));
  EXPECT_EQ(r.stats().tcp.connections_open.load(), 0u);
}

TEST(RemoteWriteSource, AnswersGarbageThatIsNotHttpWith400AndCloses) {
  Receiver r;
  const UniqueFd fd = testing::tcp_connect(r.source->port());
  ASSERT_TRUE(testing::send_all(fd.get(), "\x01\x02 not http at all\r\n\r\n"));
  char buf[256] = {};
  const ssize_t n = ::recv(fd.get(), buf, sizeof buf - 1, 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, 12), "HTTP/1.1 400");
  EXPECT_EQ(r.stats().tcp.read_errors.load(), 1u);
}

TEST(RemoteWriteSource, AnswersExpect100ContinueBeforeTheBody) {
  Receiver r;
  prometheus::WriteRequest req;
  add_series(req, {{"__name__", "m"}}, {{7, kT0}});
  const std::string body = encode(req);
  const UniqueFd fd = testing::tcp_connect(r.source->port());
  ASSERT_TRUE(testing::send_all(fd.get(), "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                              std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n\r\n"));
  char buf[256] = {};
  ssize_t n = ::recv(fd.get(), buf, sizeof buf - 1, 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, 12), "HTTP/1.1 100");
  ASSERT_TRUE(testing::send_all(fd.get(), body));
  std::string answer;
  ASSERT_TRUE(ringpipe::testing::wait_until(
      [&] {
        n = ::recv(fd.get(), buf, sizeof buf - 1, MSG_DONTWAIT);
        if (n > 0) answer.append(buf, static_cast<std::size_t>(n));
        return answer.find("\r\n\r\n") != std::string::npos;
      },
      5000ms));
  EXPECT_EQ(answer.substr(0, 12), "HTTP/1.1 204");
  ASSERT_EQ(r.store->samples().size(), 1u);
  EXPECT_EQ(r.store->samples()[0].value, 7);
}

TEST(RemoteWriteSource, RefusesBadConfigWithAReason) {
  auto store = std::make_shared<MemoryStore>();
  RemoteWriteConfig c;
  c.port = 0;
  c.path = "api";
  auto s = RemoteWriteSource::create(c, testing::memory_targets(store));
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("path must start with '/'"), std::string::npos);
  c.path = "/w";
  c.max_labels = 65;
  s = RemoteWriteSource::create(c, testing::memory_targets(store));
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("max_labels"), std::string::npos);
}

}  // namespace
}  // namespace ringpipe::ingest
