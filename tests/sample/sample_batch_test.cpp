#include "ringpipe/sample/sample_batch.hpp"

#include <array>
#include <vector>

#include <gtest/gtest.h>

namespace ringpipe::sample {
namespace {

TEST(SampleBatch, RoundTripsEveryFieldInOrder) {
  std::vector<std::byte> buf(4096);
  BatchWriter w(buf, 7, 123456789);
  const std::array<Tag, 2> tags{Tag{"host", "a"}, Tag{"dc", "eu-1"}};
  ASSERT_TRUE(w.append(Kind::kCounter, "req.count", 3.0, 0.5, tags));
  ASSERT_TRUE(w.append(Kind::kSet, "users", 0.0, 1.0, {}, "alice", 42));
  const std::size_t n = w.finish();
  EXPECT_EQ(n % 8, 0u);

  BatchReader r(std::span<const std::byte>(buf.data(), n));
  EXPECT_EQ(r.header().source_id, 7u);
  EXPECT_EQ(r.header().sample_count, 2u);
  EXPECT_EQ(r.header().received_ns, 123456789);
  auto a = r.next();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->kind, Kind::kCounter);
  EXPECT_EQ(a->name, "req.count");
  EXPECT_DOUBLE_EQ(a->value, 3.0);
  EXPECT_DOUBLE_EQ(a->sample_rate, 0.5);
  std::vector<std::pair<std::string, std::string>> seen;
  a->for_each_tag([&](Tag t) { seen.emplace_back(t.key, t.value); });
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].first, "dc");
  EXPECT_EQ(seen[1].second, "eu-1");
  auto b = r.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->kind, Kind::kSet);
  EXPECT_EQ(b->str_value, "alice");
  EXPECT_EQ(b->timestamp_ns, 42);
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.error(), DecodeError::kNone);
}

TEST(SampleBatch, RefusesSampleThatDoesNotFit) {
  std::vector<std::byte> buf(sizeof(BatchHeader) + 48);
  BatchWriter w(buf, 0, 0);
  EXPECT_TRUE(w.append(Kind::kGauge, "g", 1, 1, {}));
  EXPECT_FALSE(w.append(Kind::kGauge, "g", 1, 1, {}));
  EXPECT_EQ(w.sample_count(), 1u);
}

TEST(SampleBatch, ReaderRejectsLengthsPointingOutsideTheRecord) {
  std::vector<std::byte> buf(256);
  BatchWriter w(buf, 0, 0);
  const std::array<Tag, 1> tags{Tag{"k", "v"}};
  ASSERT_TRUE(w.append(Kind::kGauge, "name", 1, 1, tags));
  const std::size_t n = w.finish();
  // Corrupt the tag's key length so it runs past the entry.
  std::vector<std::byte> bad(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
  const std::size_t tag_off = sizeof(BatchHeader) + sizeof(SampleHeader) + 4;
  bad[tag_off] = std::byte{0xff};
  BatchReader r(bad);
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.error(), DecodeError::kBadTags);

  // A batch claiming more bytes than the record holds.
  std::vector<std::byte> shortrec(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n - 8));
  BatchReader r2(shortrec);
  EXPECT_FALSE(r2.next());
  EXPECT_EQ(r2.error(), DecodeError::kBadLength);

  BatchReader r3(std::span<const std::byte>(buf.data(), 10));
  EXPECT_EQ(r3.error(), DecodeError::kTruncatedHeader);
}

TEST(SampleBatch, ReaderRejectsUnknownKind) {
  std::vector<std::byte> buf(256);
  BatchWriter w(buf, 0, 0);
  ASSERT_TRUE(w.append(Kind::kGauge, "name", 1, 1, {}));
  const std::size_t n = w.finish();
  buf[sizeof(BatchHeader) + offsetof(SampleHeader, kind)] = std::byte{99};
  BatchReader r(std::span<const std::byte>(buf.data(), n));
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.error(), DecodeError::kBadKind);
}

}  // namespace
}  // namespace ringpipe::sample
