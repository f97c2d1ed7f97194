// SeriesMapper: a sample maps the same with and without the name hint
// (prefetch_index()), which the processor's reader takes once it knows many
// names; the hint only saves hashing the name again.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "engine_harness.hpp"
#include "engine_parts.hpp"
#include "family_registry.hpp"
#include "ringpipe/processors/aggregator.hpp"
#include "ringpipe/processors/mapping.hpp"
#include "ringpipe/sample/sample_batch.hpp"
#include "series_mapper.hpp"

namespace ringpipe::processors {
namespace {

using sample::Kind;
using testing::rule;

// A mapper over its own registry, as each reader thread has one.
struct MapperUnderTest {
  EngineOptions opts;
  detail::FamilyRegistry registry{opts.max_families, opts.max_series, opts.max_series_per_metric};
  std::optional<detail::SeriesMapper> mapper;
  std::vector<std::byte> labels;

  explicit MapperUnderTest(const MappingConfig& mapping) {
    opts.mapping = mapping;
    auto m = Matcher::create(opts.mapping);
    EXPECT_TRUE(m) << (m ? "" : m.error().message());
    mapper.emplace(std::move(*m), registry, opts);
  }
};

// The fields of a mapped sample that tell what the shard does with it.
struct Mapped {
  bool kept = false;
  std::uint64_t series_hash = 0;
  std::string family;
  int family_kind = -1;
  int prom_type = -1;
  std::string labels;
  std::uint16_t label_count = 0;
  int op = -1;
  std::uint32_t spec = 0;
  double value = 0;
  double weight = 0;
  std::uint64_t member = 0;
  std::int64_t ttl_ns = 0;
  bool operator==(const Mapped&) const = default;
};

Mapped take(MapperUnderTest& t, const sample::SampleView& s, const std::uint64_t* hint) {
  detail::MappedSample m{};
  Mapped out;
  const std::size_t before = t.labels.size();
  out.kept = t.mapper->map(s, t.labels, m, hint);
  if (!out.kept) return out;
  out.series_hash = m.series_hash;
  out.family = std::string(m.family->name());
  out.family_kind = static_cast<int>(m.family->kind);
  out.prom_type = m.family->prom_type;
  EXPECT_EQ(m.labels_off, before);
  out.labels.assign(reinterpret_cast<const char*>(t.labels.data()) + m.labels_off, m.labels_len);
  out.label_count = m.label_count;
  out.op = static_cast<int>(m.op);
  out.spec = m.spec;
  out.value = m.value;
  out.weight = m.weight;
  out.member = m.member;
  out.ttl_ns = m.ttl_ns;
  return out;
}

TEST(SeriesMapper, ASampleMapsTheSameWithTheNameHintAsWithout) {
  MappingConfig mapping;
  mapping.rules.push_back(rule("app.*.hits", "app_hits", {{"service", "$1"}}));
  mapping.rules.push_back(rule("drop.*", "unused"));
  mapping.rules.back().action = RuleAction::kDrop;
  mapping.rules.push_back(rule("bench.renamed.*", "bench_metric_0"));  // into an unmapped name's family
  MapperUnderTest plain(mapping);
  MapperUnderTest hinted(mapping);

  std::vector<std::byte> buf(1 << 18);
  sample::BatchWriter w(buf, 1, 0);
  const sample::Family prom_counter{sample::FamilyType::kCounter, 6, "Requests.", {}};
  const sample::Family prom_gauge{sample::FamilyType::kGauge, 0, {}, "bytes"};
  const sample::Tag code[] = {{"code", "200"}};
  const sample::Tag hostile[] = {{"__name__", "x"}, {"le", "1"}, {"a.b", "1"}, {"a_b", "2"}, {"bad", "\xff"}};
  const std::string long_name(20'000, 'n');  // past max_name_bytes (16 KiB)
  // Each name several times: the first time it is resolved and remembered,
  // after that it is found by the hash the hint carries.
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 40; ++i) {
      const std::string n = "bench.metric." + std::to_string(i);
      ASSERT_TRUE(w.append(Kind::kCounter, n, i, 1.0, {}));
      ASSERT_TRUE(w.append(Kind::kCounter, n, 2, 0.5, code));
    }
    ASSERT_TRUE(w.append(Kind::kGauge, "bench.metric.3", 7, 1.0, {}));  // a counter's name: a conflict
    ASSERT_TRUE(w.append(Kind::kGaugeDelta, "temp.delta", -2, 1.0, {}));
    ASSERT_TRUE(w.append(Kind::kTimer, "lat.ms", 0.25, 0.1, code));
    ASSERT_TRUE(w.append(Kind::kHistogram, "size", 3, 1.0, {}));
    ASSERT_TRUE(w.append(Kind::kDistribution, "dist", 4, 1.0, {}));
    ASSERT_TRUE(w.append(Kind::kSet, "users", 0, 1.0, {}, "alice"));
    ASSERT_TRUE(w.append(Kind::kCounter, "app.web.hits", 1, 1.0, {}));  // renamed by a rule
    ASSERT_TRUE(w.append(Kind::kCounter, "bench.renamed.x", 1, 1.0, {}));
    ASSERT_TRUE(w.append(Kind::kCounter, "drop.me", 1, 1.0, {}));
    ASSERT_TRUE(w.append(Kind::kCounter, "neg", -1, 1.0, {}));
    ASSERT_TRUE(w.append(Kind::kCounter, "hostile.tags", 1, 1.0, hostile));
    ASSERT_TRUE(w.append(Kind::kGauge, "http_requests_total", 5, 1.0, code, {}, 0, &prom_counter));
    ASSERT_TRUE(w.append(Kind::kGauge, "node:mem_bytes", 9, 1.0, {}, {}, 0, &prom_gauge));
    ASSERT_TRUE(w.append(Kind::kGauge, "node:mem_bytes", 9, 1.0, {}));  // the same name, no Prometheus family
    ASSERT_TRUE(w.append(Kind::kCounter, "ünïcode.name", 1, 1.0, {}));
    ASSERT_TRUE(w.append(Kind::kCounter, long_name, 1, 1.0, {}));
  }
  const std::size_t n = w.finish();

  sample::BatchReader r(std::span<const std::byte>(buf.data(), n));
  std::size_t count = 0;
  std::size_t kept = 0;
  while (auto s = r.next()) {
    const Mapped a = take(plain, *s, nullptr);
    const std::uint64_t hint = hinted.mapper->prefetch_index(*s);
    hinted.mapper->prefetch_entry(hint);
    hinted.mapper->prefetch_name(hint);
    const Mapped b = take(hinted, *s, &hint);
    EXPECT_TRUE(a == b) << "sample " << count << " (" << s->name.substr(0, 40) << "): kept " << a.kept << "/" << b.kept
                        << ", family '" << a.family << "'/'" << b.family << "', hash " << a.series_hash << "/"
                        << b.series_hash;
    ++count;
    kept += a.kept ? 1 : 0;
  }
  EXPECT_EQ(r.error(), sample::DecodeError::kNone);
  ASSERT_EQ(count, 3u * (80 + 16));
  // Every way a sample is dropped above was taken, and as often both ways.
  const EngineStats sa = plain.mapper->stats();
  const EngineStats sb = hinted.mapper->stats();
  EXPECT_EQ(sa.samples, count);
  EXPECT_EQ(sb.samples, count);
  EXPECT_EQ(sa.dropped_by_rule, 3u);
  EXPECT_EQ(sa.dropped_conflict, 3u);
  EXPECT_EQ(sa.dropped_negative_counter, 3u);
  EXPECT_EQ(sa.dropped_name_too_long, 3u);
  EXPECT_EQ(kept, count - 12);
  EXPECT_EQ(sa.dropped_by_rule, sb.dropped_by_rule);
  EXPECT_EQ(sa.dropped_conflict, sb.dropped_conflict);
  EXPECT_EQ(sa.dropped_negative_counter, sb.dropped_negative_counter);
  EXPECT_EQ(sa.dropped_name_too_long, sb.dropped_name_too_long);
  EXPECT_EQ(sa.unmapped, sb.unmapped);
  EXPECT_EQ(sa.labels_dropped_reserved, sb.labels_dropped_reserved);
  EXPECT_EQ(sa.labels_dropped_invalid, sb.labels_dropped_invalid);
  EXPECT_EQ(sa.labels_dropped_duplicate, sb.labels_dropped_duplicate);
  EXPECT_GT(sa.labels_dropped_reserved, 0u);
  EXPECT_GT(sa.labels_dropped_invalid, 0u);
  EXPECT_EQ(plain.registry.size(), hinted.registry.size());
}

}  // namespace
}  // namespace ringpipe::processors
