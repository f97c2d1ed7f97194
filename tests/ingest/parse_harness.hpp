#pragma once
// Test helper: runs a parser over a packet into a real sample batch and
// decodes it again, so every test checks the bytes a processor would read.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringpipe/ingest/parse.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace ringpipe::ingest::testing {

struct Got {
  sample::Kind kind{};
  std::string name;
  double value = 0;
  double rate = 0;
  std::vector<std::pair<std::string, std::string>> tags;
  std::string str;
  std::int64_t ts = 0;
  sample::FamilyType family_type = sample::FamilyType::kNone;
  std::string family;  // the family's name (the sample's name less its suffix)
  std::string help;
  std::string unit;
  // A kNativeHistogram entry's part (empty buckets and zeros otherwise).
  std::int32_t schema = 0;
  sample::ResetHint reset_hint = sample::ResetHint::kUnknown;
  double zero_threshold = 0, zero_count = 0, count = 0, sum = 0;
  std::vector<std::pair<std::int32_t, double>> positive, negative;
};

struct Parsed {
  std::vector<Got> samples;
  ParseCounters counters;
  [[nodiscard]] std::uint64_t err(ParseError e) const { return counters[e]; }
};

inline std::vector<Got> decode(std::span<const std::byte> record) {
  std::vector<Got> out;
  sample::BatchReader r(record);
  while (auto s = r.next()) {
    Got g;
    g.kind = s->kind;
    g.name = std::string(s->name);
    g.value = s->value;
    g.rate = s->sample_rate;
    g.str = std::string(s->str_value);
    g.ts = s->timestamp_ns;
    g.family_type = s->family.type;
    g.family = std::string(s->family_name());
    g.help = std::string(s->family.help);
    g.unit = std::string(s->family.unit);
    s->for_each_tag([&](sample::Tag t) { g.tags.emplace_back(t.key, t.value); });
    if (s->kind == sample::Kind::kNativeHistogram) {
      const sample::NativeView n = s->native();
      g.schema = n.schema;
      g.reset_hint = n.reset_hint;
      g.zero_threshold = n.zero_threshold;
      g.zero_count = n.zero_count;
      g.count = n.count;
      g.sum = n.sum;
      for (std::uint32_t i = 0; i < n.positive_count; ++i) g.positive.push_back(n.positive(i));
      for (std::uint32_t i = 0; i < n.negative_count; ++i) g.negative.push_back(n.negative(i));
    }
    out.push_back(std::move(g));
  }
  EXPECT_EQ(r.error(), sample::DecodeError::kNone);
  return out;
}

template <class Parser>
Parsed parse(Parser& parser, std::string_view packet) {
  std::vector<std::byte> buf(1 << 20);
  sample::BatchWriter w(buf, 1, 0);
  SampleOutput out(&w);
  Parsed p;
  parser.parse_packet(packet, out, p.counters);
  const std::size_t n = w.finish();
  p.samples = decode(std::span<const std::byte>(buf.data(), n));
  EXPECT_EQ(out.written(), p.counters.samples);
  return p;
}

using Tags = std::vector<std::pair<std::string, std::string>>;

}  // namespace ringpipe::ingest::testing
