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
    Got g{s->kind,
          std::string(s->name),
          s->value,
          s->sample_rate,
          {},
          std::string(s->str_value),
          s->timestamp_ns,
          s->family.type,
          std::string(s->family_name()),
          std::string(s->family.help),
          std::string(s->family.unit)};
    s->for_each_tag([&](sample::Tag t) { g.tags.emplace_back(t.key, t.value); });
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
