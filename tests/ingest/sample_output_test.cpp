#include "ringpipe/ingest/parse.hpp"

#include <vector>

#include <gtest/gtest.h>

#include "parse_harness.hpp"
#include "ringpipe/ingest/statsd_parser.hpp"

namespace ringpipe::ingest {
namespace {

// A transport-like owner that commits full batches into a list and starts a new one.
struct Rotating {
  std::vector<std::byte> buf = std::vector<std::byte>(256);
  sample::BatchWriter writer{buf, 9, 0};
  std::vector<std::vector<std::byte>> committed;
  int budget = 1000;

  static bool rotate(void* ctx) noexcept {
    auto* self = static_cast<Rotating*>(ctx);
    self->commit();
    if (self->budget-- <= 0) return false;
    self->writer.reset(self->buf, 0);
    return true;
  }
  void commit() {
    const std::size_t n = writer.finish();
    committed.emplace_back(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
  }
};

TEST(SampleOutput, RotatesToAFreshBatchWhenFullAndLosesNothing) {
  Rotating r;
  SampleOutput out(&r.writer, &Rotating::rotate, &r);
  StatsdParser p;
  ParseCounters c;
  std::string packet;
  for (int i = 0; i < 50; ++i) packet += "metric" + std::to_string(i) + ":1|c\n";
  p.parse_packet(packet, out, c);
  r.commit();
  std::size_t total = 0;
  for (const auto& rec : r.committed) total += testing::decode(rec).size();
  EXPECT_EQ(total, 50u);
  EXPECT_GT(r.committed.size(), 5u);
  EXPECT_EQ(out.written(), 50u);
  EXPECT_EQ(out.dropped(), 0u);
}

TEST(SampleOutput, CountsSamplesAsDroppedWhenRotationIsRefused) {
  Rotating r;
  r.budget = 0;
  SampleOutput out(&r.writer, &Rotating::rotate, &r);
  StatsdParser p;
  ParseCounters c;
  std::string packet;
  for (int i = 0; i < 50; ++i) packet += "m:1|c\n";
  p.parse_packet(packet, out, c);
  EXPECT_EQ(c.samples, 50u);
  EXPECT_EQ(out.written() + out.dropped(), 50u);
  EXPECT_GT(out.dropped(), 0u);
}

TEST(SampleOutput, CountsSampleLargerThanABatchAsTooLarge) {
  Rotating r;
  SampleOutput out(&r.writer, &Rotating::rotate, &r);
  const std::string name(300, 'x');
  EXPECT_FALSE(out.emit(sample::Kind::kGauge, name, 1, 1, {}));
  EXPECT_EQ(out.too_large(), 1u);
  EXPECT_TRUE(r.committed.empty());  // no rotation for a sample that can never fit
}

TEST(SampleOutput, CountsEverySampleAsDroppedWithoutAWriter) {
  SampleOutput out;
  EXPECT_FALSE(out.emit(sample::Kind::kGauge, "a", 1, 1, {}));
  EXPECT_EQ(out.dropped(), 1u);
}

}  // namespace
}  // namespace ringpipe::ingest
