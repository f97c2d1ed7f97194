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

relabel::Rules compile(std::vector<relabel::RuleSpec> specs) {
  auto r = relabel::Rules::compile(std::move(specs));
  EXPECT_TRUE(r.has_value());
  return r ? *r : relabel::Rules();
}

// StatsD lines relabeled on their way into the batch: the name as __name__,
// DogStatsD tags as labels, drops and emptied names counted apart.
TEST(SampleOutput, RelabelsNameAndTagsBeforeTheBatchAndCountsDrops) {
  relabel::RuleSpec drop;
  drop.action = relabel::Action::kDrop;
  drop.source_labels = {"env"};
  drop.regex = "dev";
  relabel::RuleSpec rename;
  rename.source_labels = {"__name__"};
  rename.regex = "api\\.(.*)";
  rename.target_label = "__name__";
  rename.replacement = "svc.$1";
  relabel::RuleSpec copy;
  copy.source_labels = {"host"};
  copy.target_label = "instance";
  relabel::RuleSpec strip;
  strip.action = relabel::Action::kLabelDrop;
  strip.regex = "host";
  relabel::RuleSpec unname;  // empties the name of "gone.*" samples
  unname.source_labels = {"__name__"};
  unname.regex = "gone\\..*";
  unname.target_label = "__name__";
  unname.replacement = "";
  const relabel::Rules rules = compile({drop, rename, copy, strip, unname});

  std::vector<std::byte> buf(4096);
  sample::BatchWriter writer(buf, 1, 0);
  SampleOutput out(&writer);
  RelabelScratch scratch;
  out.set_relabel(&rules, &scratch);
  StatsdParser p;
  ParseCounters c;
  p.parse_packet(
      "api.hits:1|c|#host:a,env:prod\n"
      "api.hits:2|c|#host:b,env:dev\n"
      "gone.x:3|g\n"
      "other:4|g|#zone:z\n",
      out, c);
  const std::size_t n = writer.finish();
  const auto got = testing::decode(std::span<const std::byte>(buf.data(), n));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].name, "svc.hits");
  EXPECT_EQ(got[0].tags, (std::vector<std::pair<std::string, std::string>>{{"env", "prod"}, {"instance", "a"}}));
  EXPECT_EQ(got[0].value, 1.0);
  EXPECT_EQ(got[1].name, "other");
  EXPECT_EQ(got[1].tags, (std::vector<std::pair<std::string, std::string>>{{"zone", "z"}}));
  EXPECT_EQ(c.samples, 4u);
  EXPECT_EQ(out.written(), 2u);
  EXPECT_EQ(out.relabel_dropped(), 1u);
  EXPECT_EQ(out.relabel_invalid_name(), 1u);
}

// A Prometheus sample renamed out of its family's suffix becomes a family of
// its own; one whose new name Prometheus refuses is dropped and counted.
TEST(SampleOutput, RelabeledPrometheusSamplesKeepValidNamesAndFamilies) {
  relabel::RuleSpec rename;
  rename.source_labels = {"__name__"};
  rename.regex = "rpc_(.*)";
  rename.target_label = "__name__";
  rename.replacement = "grpc_$1";
  relabel::RuleSpec bad;
  bad.source_labels = {"__name__"};
  bad.regex = "x_.*";
  bad.target_label = "__name__";
  bad.replacement = "not-valid";
  const relabel::Rules rules = compile({rename, bad});
  std::vector<std::byte> buf(4096);
  sample::BatchWriter writer(buf, 1, 0);
  SampleOutput out(&writer);
  RelabelScratch scratch;
  out.set_relabel(&rules, &scratch);
  const sample::Family hist{sample::FamilyType::kHistogram, 7, "Latency.", ""};
  const sample::Tag le{"le", "0.5"};
  out.emit(sample::Kind::kGauge, "rpc_seconds_bucket", 3, 1.0, std::span(&le, 1), {}, 0, &hist);
  out.emit(sample::Kind::kGauge, "x_total", 1, 1.0, {}, {}, 0, &hist);
  const std::size_t n = writer.finish();
  const auto got = testing::decode(std::span<const std::byte>(buf.data(), n));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].name, "grpc_seconds_bucket");
  EXPECT_EQ(got[0].family, "grpc_seconds");
  EXPECT_EQ(got[0].family_type, sample::FamilyType::kHistogram);
  EXPECT_EQ(out.relabel_invalid_name(), 1u);
}

// Without rules nothing changes (and set_relabel(nullptr) turns them off).
TEST(SampleOutput, WithoutRulesSamplesAreWrittenAsParsed) {
  std::vector<std::byte> buf(4096);
  sample::BatchWriter writer(buf, 1, 0);
  SampleOutput out(&writer);
  out.set_relabel(nullptr, nullptr);
  StatsdParser p;
  ParseCounters c;
  p.parse_packet("a.b:1|c|#host:x\n", out, c);
  const std::size_t n = writer.finish();
  const auto got = testing::decode(std::span<const std::byte>(buf.data(), n));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].name, "a.b");
  EXPECT_EQ(out.relabel_dropped() + out.relabel_invalid_name(), 0u);
}

}  // namespace
}  // namespace ringpipe::ingest
