#include "ringpipe/sample/sample_batch.hpp"

#include <array>
#include <cstddef>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
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

// Names, values and tags of every length from 0 to 40 bytes (the writer
// copies short strings with overlapping word moves) come back byte for byte,
// and the 8-byte padding after each entry stays zero.
// A view's tags are re-walked after validation. When the record lies in
// shared memory that another process rewrites meanwhile, the walk must still
// stay inside the validated tag bytes.
TEST(SampleBatch, TagWalkStaysInsideTheTagBytesWhenTheyChangeAfterValidation) {
  std::vector<std::byte> buf(4096);
  BatchWriter w(buf, 1, 1);
  const std::array<Tag, 3> tags{Tag{"a", "1"}, Tag{"b", "2"}, Tag{"c", "3"}};
  ASSERT_TRUE(w.append(Kind::kCounter, "x", 1.0, 1.0, tags));
  const std::size_t n = w.finish();
  BatchReader r(std::span<const std::byte>(buf.data(), n));
  auto v = r.next();
  ASSERT_TRUE(v);
  ASSERT_EQ(v->tag_count, 3);
  // Now the second tag's lengths are rewritten under the view.
  TagHeader big{0xffff, 0xffff};
  std::memcpy(const_cast<std::byte*>(v->tag_bytes.data()) + sizeof(TagHeader) + 2, &big, sizeof big);
  const char* lo = reinterpret_cast<const char*>(v->tag_bytes.data());
  const char* hi = lo + v->tag_bytes.size();
  int calls = 0;
  v->for_each_tag([&](Tag t) {
    ++calls;
    EXPECT_GE(t.key.data(), lo);
    EXPECT_LE(t.value.data() + t.value.size(), hi) << "tag walk read past the validated bytes";
  });
  EXPECT_EQ(calls, 1);  // stopped at the damaged tag
}

TEST(SampleBatch, RoundTripsStringsOfEveryShortLength) {
  std::string pool;
  for (int i = 0; i < 64; ++i) pool.push_back(static_cast<char>('a' + i % 26));
  for (std::size_t len = 0; len <= 40; ++len) {
    std::vector<std::byte> buf(1024, std::byte{0xAB});
    BatchWriter w(buf, 1, 0);
    const std::string name = pool.substr(1, len);
    const std::string key = pool.substr(2, len / 2 + 1);
    const std::string val = pool.substr(3, len);
    const std::array<Tag, 1> tags{Tag{key, val}};
    ASSERT_TRUE(w.append(Kind::kSet, name, 0.0, 1.0, tags, pool.substr(5, len), 0)) << len;
    const std::size_t n = w.finish();
    BatchReader r(std::span<const std::byte>(buf.data(), n));
    auto e = r.next();
    ASSERT_TRUE(e) << len;
    EXPECT_EQ(e->name, name) << len;
    EXPECT_EQ(e->str_value, pool.substr(5, len)) << len;
    std::vector<std::pair<std::string, std::string>> seen;
    e->for_each_tag([&](Tag t) { seen.emplace_back(t.key, t.value); });
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].first, key) << len;
    EXPECT_EQ(seen[0].second, val) << len;
    const std::size_t unpadded =
        sizeof(BatchHeader) + sizeof(SampleHeader) + 2 * len + sizeof(TagHeader) + key.size() + len;
    for (std::size_t i = unpadded; i < n; ++i)
      EXPECT_EQ(buf[i], std::byte{0}) << "padding byte " << i << " len " << len;
    EXPECT_EQ(buf[n], std::byte{0xAB}) << "wrote past the entry, len " << len;
  }
}

TEST(SampleBatch, RefusesSampleThatDoesNotFit) {
  std::vector<std::byte> buf(sizeof(BatchHeader) + 48);
  BatchWriter w(buf, 0, 0);
  EXPECT_TRUE(w.append(Kind::kGauge, "g", 1, 1, {}));
  EXPECT_FALSE(w.append(Kind::kGauge, "g", 1, 1, {}));
  EXPECT_EQ(w.sample_count(), 1u);
}

// An entry encoded once and appended again with other values makes the very
// bytes append() makes for the same samples, and it is refused whole when it
// does not fit.
TEST(SampleBatch, AnEntryEncodedOnceAppendsTheSameBytesAsAppend) {
  const std::array<Tag, 2> tags{Tag{"route", "/api"}, Tag{"dc", "eu-1"}};
  struct Series {
    Kind kind;
    std::string_view name;
    std::span<const Tag> tags;
  };
  const std::array<Series, 4> series{Series{Kind::kCounter, "req.count", tags}, Series{Kind::kGauge, "g", {}},
                                     Series{Kind::kTimer, "latency_with_a_longer_name", std::span(tags).first(1)},
                                     Series{Kind::kHistogram, "h", tags}};
  std::vector<std::vector<std::byte>> entries;
  for (const Series& s : series) {
    std::vector<std::byte> probe(1024);
    BatchWriter w(probe, 0, 0);
    const std::size_t empty = w.finish();
    ASSERT_TRUE(w.append(s.kind, s.name, 0, 1, s.tags));
    entries.emplace_back(probe.begin() + static_cast<std::ptrdiff_t>(empty),
                         probe.begin() + static_cast<std::ptrdiff_t>(w.finish()));
  }
  std::vector<std::byte> want(4096, std::byte{0x5A});
  std::vector<std::byte> got(4096, std::byte{0xA5});
  BatchWriter a(std::span<std::byte>(want).first(2048), 3, 99);
  BatchWriter b(std::span<std::byte>(got).first(2048), 3, 99);
  for (int i = 0; i < 40; ++i) {
    const std::size_t k = static_cast<std::size_t>(i) % series.size();
    const double value = i * 1.25 - 7;
    const double rate = 1.0 / (1 + i % 3);
    const bool fits = a.append(series[k].kind, series[k].name, value, rate, series[k].tags);
    EXPECT_EQ(b.append_entry(entries[k], value, rate), fits) << "sample " << i;
  }
  EXPECT_GT(a.sample_count(), 10u);
  EXPECT_LT(a.sample_count(), 40u);  // the buffer filled up: the refusals were compared too
  EXPECT_EQ(b.sample_count(), a.sample_count());
  const std::size_t n = a.finish();
  ASSERT_EQ(b.finish(), n);
  EXPECT_EQ(std::memcmp(want.data(), got.data(), n), 0);
  EXPECT_EQ(got[n], std::byte{0xA5});  // nothing written past the batch
  BatchReader r(std::span<const std::byte>(got).first(n));
  std::uint32_t read = 0;
  while (r.next()) ++read;
  EXPECT_EQ(r.error(), DecodeError::kNone);
  EXPECT_EQ(read, a.sample_count());
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

// A finished one-sample batch and its bytes, for tests that corrupt them.
std::vector<std::byte> one_sample_batch() {
  std::vector<std::byte> buf(256);
  BatchWriter w(buf, 5, 77);
  const std::array<Tag, 1> tags{Tag{"k", "v"}};
  EXPECT_TRUE(w.append(Kind::kGauge, "name", 1, 1, tags));
  buf.resize(w.finish());
  return buf;
}

template <class T>
void poke(std::vector<std::byte>& rec, std::size_t offset, T value) {
  std::memcpy(rec.data() + offset, &value, sizeof value);
}

TEST(SampleBatch, ReaderRefusesARecordOfAnotherFormatVersion) {
  for (const std::uint16_t version :
       {std::uint16_t{0}, std::uint16_t{1}, std::uint16_t{kFormatVersionNative + 1}, std::uint16_t{0xffff}}) {
    std::vector<std::byte> rec = one_sample_batch();
    poke(rec, offsetof(BatchHeader, format_version), version);
    BatchReader r(rec);
    EXPECT_EQ(r.error(), DecodeError::kBadVersion) << "version " << version;
    EXPECT_FALSE(r.next()) << "version " << version;
    EXPECT_EQ(r.error(), DecodeError::kBadVersion);
  }
  // The same bytes with the right version decode, so the refusal is the version's.
  const std::vector<std::byte> rec = one_sample_batch();
  BatchReader ok(rec);
  ASSERT_TRUE(ok.next());
  EXPECT_EQ(ok.error(), DecodeError::kNone);
}

TEST(SampleBatch, ReaderRefusesABatchLengthShorterThanItsHeader) {
  std::vector<std::byte> rec = one_sample_batch();
  poke(rec, offsetof(BatchHeader, bytes), std::uint32_t{sizeof(BatchHeader) - 1});
  BatchReader r(rec);
  EXPECT_EQ(r.error(), DecodeError::kBadLength);
  EXPECT_FALSE(r.next());
}

TEST(SampleBatch, ReaderRefusesARecordCutInsideAnEntry) {
  const std::vector<std::byte> whole = one_sample_batch();
  // Every cut between the header and the end: the header's byte count no
  // longer fits the record.
  for (std::size_t cut = sizeof(BatchHeader); cut < whole.size(); ++cut) {
    BatchReader r(std::span<const std::byte>(whole.data(), cut));
    EXPECT_FALSE(r.next()) << "cut at " << cut;
    EXPECT_EQ(r.error(), DecodeError::kBadLength) << "cut at " << cut;
  }
  // A header that agrees with the cut (bytes shrunk too): the entry itself is short.
  for (std::size_t cut = sizeof(BatchHeader); cut < whole.size(); cut += 8) {
    std::vector<std::byte> rec(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(cut));
    poke(rec, offsetof(BatchHeader, bytes), static_cast<std::uint32_t>(cut));
    BatchReader r(rec);
    EXPECT_FALSE(r.next()) << "cut at " << cut;
    EXPECT_EQ(r.error(), DecodeError::kBadEntry) << "cut at " << cut;
  }
}

TEST(SampleBatch, ReaderRefusesACountOfSamplesLargerThanTheEntriesPresent) {
  std::vector<std::byte> rec = one_sample_batch();
  poke(rec, offsetof(BatchHeader, sample_count), std::uint32_t{2});
  BatchReader r(rec);
  auto first = r.next();
  ASSERT_TRUE(first);  // what precedes the damage is still delivered
  EXPECT_EQ(first->name, "name");
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.error(), DecodeError::kBadEntry);
}

TEST(SampleBatch, ReaderRefusesCorruptEntrySizesAndStringLengths) {
  const std::size_t entry = sizeof(BatchHeader);
  struct Case {
    const char* what;
    std::size_t offset;
    std::uint32_t value;
    std::size_t width;
  };
  const Case cases[] = {
      {"size past the batch", offsetof(SampleHeader, size), 4096, 4},
      {"size not a multiple of 8", offsetof(SampleHeader, size), 52, 4},
      {"size smaller than the header", offsetof(SampleHeader, size), 8, 4},
      {"size zero", offsetof(SampleHeader, size), 0, 4},
      {"name past the entry", offsetof(SampleHeader, name_len), 0xffff, 2},
      {"string value past the entry", offsetof(SampleHeader, str_len), 200, 2},
  };
  for (const Case& c : cases) {
    std::vector<std::byte> rec = one_sample_batch();
    if (c.width == 4) {
      poke(rec, entry + c.offset, c.value);
    } else {
      poke(rec, entry + c.offset, static_cast<std::uint16_t>(c.value));
    }
    BatchReader r(rec);
    EXPECT_FALSE(r.next()) << c.what;
    EXPECT_EQ(r.error(), DecodeError::kBadEntry) << c.what;
  }
  // More tags than the entry holds.
  std::vector<std::byte> rec = one_sample_batch();
  poke(rec, entry + offsetof(SampleHeader, tag_count), std::uint16_t{3});
  BatchReader r(rec);
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.error(), DecodeError::kBadTags);
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

TEST(SampleBatch, RoundTripsAPrometheusSamplesFamily) {
  std::vector<std::byte> buf(4096);
  BatchWriter w(buf, 3, 5);
  const std::array<Tag, 1> tags{Tag{"le", "0.5"}};
  const Family fam{FamilyType::kHistogram, 7, "Request latency.", "seconds"};
  ASSERT_EQ(entry_size("job:rpc_seconds_bucket", {}, tags, &fam) % 8, 0u);
  ASSERT_TRUE(w.append(Kind::kGauge, "job:rpc_seconds_bucket", 12.0, 1.0, tags, {}, 99, &fam));
  ASSERT_TRUE(w.append(Kind::kCounter, "plain", 1.0, 1.0, {}));
  const std::size_t n = w.finish();
  EXPECT_EQ(n,
            sizeof(BatchHeader) + entry_size("job:rpc_seconds_bucket", {}, tags, &fam) + entry_size("plain", {}, {}));
  BatchReader r(std::span<const std::byte>(buf.data(), n));
  auto a = r.next();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->name, "job:rpc_seconds_bucket");
  EXPECT_EQ(a->family.type, FamilyType::kHistogram);
  EXPECT_EQ(a->family_name(), "job:rpc_seconds");
  EXPECT_EQ(a->family.help, "Request latency.");
  EXPECT_EQ(a->family.unit, "seconds");
  EXPECT_EQ(a->timestamp_ns, 99);
  std::string le;
  a->for_each_tag([&](Tag t) { le = std::string(t.key) + "=" + std::string(t.value); });
  EXPECT_EQ(le, "le=0.5");
  auto b = r.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->family.type, FamilyType::kNone);
  EXPECT_EQ(b->family_name(), "plain");
  EXPECT_TRUE(b->family.help.empty());
  EXPECT_EQ(r.error(), DecodeError::kNone);
}

// The writer composes each SampleHeader in registers and stores it as
// words; the bytes must be exactly those of the struct FORMAT.md describes,
// every field at its largest value and with a neighbour's bits set, so a
// field shifted into another shows.
TEST(SampleBatch, TheEntryHeaderIsTheSampleHeaderLayoutByteForByte) {
  const std::string name(300, 'n');
  const std::string member(65535, 'm');
  const std::string help(65535, 'h');
  const std::string unit(255, 'u');
  const std::array<Tag, 3> tags{Tag{"k1", "v1"}, Tag{"k2", "v2"}, Tag{"k3", "v3"}};
  const Family fam{FamilyType::kGaugeHistogram, 255, help, unit};
  struct Case {
    Kind kind;
    std::string_view str;
    const Family* family;
  };
  for (const Case& c : {Case{Kind::kSet, member, nullptr}, Case{Kind::kGauge, {}, &fam}}) {
    std::vector<std::byte> buf(1 << 20);
    BatchWriter w(buf, 1, 2);
    ASSERT_TRUE(w.append(c.kind, name, -1.5, 0.25, tags, c.str, -7, c.family));
    const std::size_t n = w.finish();
    const std::size_t size = entry_size(name, c.str, tags, c.family);
    ASSERT_EQ(n, sizeof(BatchHeader) + size);
    SampleHeader want{};
    want.value = -1.5;
    want.sample_rate = 0.25;
    want.timestamp_ns = -7;
    want.size = static_cast<std::uint32_t>(size);
    want.name_len = 300;
    want.tag_count = 3;
    want.str_len = static_cast<std::uint16_t>(c.str.size());
    want.kind = static_cast<std::uint8_t>(c.kind);
    if (c.family != nullptr) {
      want.family_type = static_cast<std::uint8_t>(FamilyType::kGaugeHistogram);
      want.help_len = 65535;
      want.unit_len = 255;
      want.suffix_len = 255;
    }
    std::array<std::byte, sizeof(SampleHeader)> want_bytes;
    std::memcpy(want_bytes.data(), &want, sizeof want);
    EXPECT_EQ(std::memcmp(buf.data() + sizeof(BatchHeader), want_bytes.data(), sizeof want), 0)
        << (c.family != nullptr ? "typed" : "untyped");
    BatchReader r(std::span<const std::byte>(buf.data(), n));
    const auto v = r.next();
    ASSERT_TRUE(v) << decode_error_name(r.error());
    EXPECT_EQ(v->name, name);
    EXPECT_EQ(v->str_value, c.str);
    EXPECT_EQ(v->tag_count, 3);
  }
}

TEST(SampleBatch, WriterRefusesAFamilyItCannotEncode) {
  std::vector<std::byte> buf(4096);
  BatchWriter w(buf, 0, 0);
  const std::string long_unit(256, 'u');
  const Family too_long_unit{FamilyType::kGauge, 0, "", long_unit};
  EXPECT_FALSE(w.append(Kind::kGauge, "g", 1, 1, {}, {}, 0, &too_long_unit));
  const Family suffix_past_name{FamilyType::kHistogram, 7, "", ""};
  EXPECT_FALSE(w.append(Kind::kGauge, "g_sum", 1, 1, {}, {}, 0, &suffix_past_name));
  EXPECT_TRUE(w.empty());
}

// A family type only on a set (never-added) sample; help, unit and a suffix
// only with a type: anything else is a damaged or foreign entry.
TEST(SampleBatch, ReaderRejectsAnInconsistentFamily) {
  struct Case {
    const char* what;
    std::size_t offset;
    std::uint8_t byte;
  };
  const Case cases[] = {
      {"unknown family type", offsetof(SampleHeader, family_type), 9},
      {"typed counter", offsetof(SampleHeader, kind), static_cast<std::uint8_t>(Kind::kCounter)},
      {"suffix longer than the name", offsetof(SampleHeader, suffix_len), 5},
  };
  for (const Case& c : cases) {
    std::vector<std::byte> buf(256);
    BatchWriter w(buf, 0, 0);
    const Family fam{FamilyType::kCounter, 0, "h", ""};
    ASSERT_TRUE(w.append(Kind::kGauge, "name", 1, 1, {}, {}, 0, &fam));
    const std::size_t n = w.finish();
    buf[sizeof(BatchHeader) + c.offset] = std::byte{c.byte};
    BatchReader r(std::span<const std::byte>(buf.data(), n));
    EXPECT_FALSE(r.next()) << c.what;
    EXPECT_EQ(r.error(), DecodeError::kBadFamily) << c.what;
  }
  std::vector<std::byte> buf(256);
  BatchWriter w(buf, 0, 0);
  ASSERT_TRUE(w.append(Kind::kGauge, "name", 1, 1, {}));
  const std::size_t n = w.finish();
  buf[sizeof(BatchHeader) + offsetof(SampleHeader, suffix_len)] = std::byte{2};
  BatchReader r(std::span<const std::byte>(buf.data(), n));
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.error(), DecodeError::kBadFamily);
}

}  // namespace
using Buckets = std::vector<std::pair<std::int32_t, double>>;

// A batch of a plain gauge, then a native histogram sample h{job=a}.
std::vector<std::byte> native_batch(const NativeSample& n, std::size_t* native_entry = nullptr) {
  std::vector<std::byte> buf(1024);
  BatchWriter w(buf, 3, 99);
  const Family plain{FamilyType::kGauge, 0, "g help", {}};
  EXPECT_TRUE(w.append(Kind::kGauge, "g", 1, 1, {}, {}, 0, &plain));
  if (native_entry != nullptr) *native_entry = sizeof(BatchHeader) + entry_size("g", {}, {}, &plain);
  const std::array<Tag, 1> tags{Tag{"job", "a"}};
  const Family fam{FamilyType::kHistogram, 0, "latency", "seconds"};
  EXPECT_TRUE(w.append_native("h", tags, n, fam, 1700000000000000000));
  buf.resize(w.finish());
  return buf;
}

NativeSample sample_native(const Buckets& pos, const Buckets& neg) {
  NativeSample n;
  n.schema = 3;
  n.reset_hint = ResetHint::kNo;
  n.zero_threshold = 1e-128;
  n.zero_count = 2;
  n.count = 9;
  n.sum = -1.5;
  n.positive = pos;
  n.negative = neg;
  return n;
}

TEST(SampleBatch, ANativeHistogramSampleRoundTripsInAVersion3BatchAndOtherBatchesStayVersion2) {
  const Buckets pos{{-2, 1}, {0, 3}, {7, 2}};
  const Buckets neg{{1, 1}};
  const std::vector<std::byte> rec = native_batch(sample_native(pos, neg));
  BatchReader r(rec);
  EXPECT_EQ(r.header().format_version, kFormatVersionNative);
  EXPECT_EQ(r.header().sample_count, 2u);
  const auto g = r.next();
  ASSERT_TRUE(g);
  EXPECT_EQ(g->kind, Kind::kGauge);
  EXPECT_EQ(g->native().buckets.size(), 0u);
  const auto h = r.next();
  ASSERT_TRUE(h) << decode_error_name(r.error());
  EXPECT_EQ(h->kind, Kind::kNativeHistogram);
  EXPECT_EQ(h->name, "h");
  EXPECT_EQ(h->timestamp_ns, 1700000000000000000);
  EXPECT_EQ(h->family.type, FamilyType::kHistogram);
  EXPECT_EQ(h->family.help, "latency");
  EXPECT_EQ(h->family.unit, "seconds");
  std::vector<std::pair<std::string, std::string>> tags;
  h->for_each_tag([&](Tag t) { tags.emplace_back(t.key, t.value); });
  EXPECT_EQ(tags, (std::vector<std::pair<std::string, std::string>>{{"job", "a"}}));
  const NativeView n = h->native();
  EXPECT_EQ(n.schema, 3);
  EXPECT_EQ(n.reset_hint, ResetHint::kNo);
  EXPECT_EQ(n.zero_threshold, 1e-128);
  EXPECT_EQ(n.zero_count, 2);
  EXPECT_EQ(n.count, 9);
  EXPECT_EQ(n.sum, -1.5);
  ASSERT_EQ(n.positive_count, 3u);
  ASSERT_EQ(n.negative_count, 1u);
  for (std::uint32_t i = 0; i < 3; ++i) EXPECT_EQ(n.positive(i), pos[i]);
  EXPECT_EQ(n.negative(0), neg[0]);
  EXPECT_FALSE(r.next());
  EXPECT_EQ(r.error(), DecodeError::kNone);

  // Without a native sample a batch is version 2, byte for byte as before.
  std::vector<std::byte> buf(256);
  BatchWriter w(buf, 3, 99);
  ASSERT_TRUE(w.append(Kind::kGauge, "g", 1, 1, {}));
  w.finish();
  BatchHeader bh;
  std::memcpy(&bh, buf.data(), sizeof bh);
  EXPECT_EQ(bh.format_version, kFormatVersion);
  // And a writer reset after a native sample starts version 2 again.
  ASSERT_TRUE(w.append_native("h", {}, sample_native(pos, neg), Family{FamilyType::kGaugeHistogram, 0, {}, {}}));
  w.finish();
  std::memcpy(&bh, buf.data(), sizeof bh);
  EXPECT_EQ(bh.format_version, kFormatVersionNative);
  w.reset(buf, 0);
  ASSERT_TRUE(w.append(Kind::kGauge, "g", 1, 1, {}));
  w.finish();
  std::memcpy(&bh, buf.data(), sizeof bh);
  EXPECT_EQ(bh.format_version, kFormatVersion);
}

TEST(SampleBatch, WriterRefusesANativeSampleThatBreaksTheRules) {
  const Buckets ok{{0, 1}, {1, 1}};
  const Buckets unordered{{1, 1}, {1, 1}};
  const Buckets negative_count{{0, -1}};
  const Family hist{FamilyType::kHistogram, 0, {}, {}};
  std::vector<std::byte> buf(1024);
  BatchWriter w(buf, 0, 0);
  auto refused = [&](NativeSample n, const Family& f) {
    const bool wrote = w.append_native("h", {}, n, f);
    return !wrote && w.sample_count() == 0;
  };
  NativeSample n = sample_native(ok, {});
  EXPECT_TRUE(refused(n, Family{FamilyType::kCounter, 0, {}, {}}));
  EXPECT_TRUE(refused(n, Family{}));
  n.schema = 9;
  EXPECT_TRUE(refused(n, hist));
  n = sample_native(unordered, {});
  EXPECT_TRUE(refused(n, hist));
  n = sample_native({}, negative_count);
  EXPECT_TRUE(refused(n, hist));
  n = sample_native(ok, {});
  n.zero_count = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(refused(n, hist));
  n = sample_native(ok, {});
  n.reset_hint = static_cast<ResetHint>(4);
  EXPECT_TRUE(refused(n, hist));
  std::vector<std::byte> small(64);
  BatchWriter tiny(small, 0, 0);
  EXPECT_FALSE(tiny.append_native("h", {}, sample_native(ok, {}), hist));
  EXPECT_TRUE(w.append_native("h", {}, sample_native(ok, {}), hist));
}

TEST(SampleBatch, NativeKeysStayWithinTheSchemasLimitAsInTheMetricFormat) {
  // native_key_limit: 1075 << schema above 0, 1075 at or below it; the key
  // at the limit is kept, one past it refused by writer and reader alike.
  for (const std::int32_t schema : {-4, 0, 1, 3, 8}) {
    SCOPED_TRACE(schema);
    const std::int32_t lim = native_key_limit(schema);
    EXPECT_EQ(lim, schema > 0 ? 1075 * (1 << schema) : 1075);
    const Buckets edge{{-lim, 1}, {lim, 1}};
    NativeSample n = sample_native(edge, edge);
    n.schema = schema;
    std::vector<std::byte> rec = native_batch(n);
    BatchReader r(rec);
    ASSERT_TRUE(r.next());
    const auto h = r.next();
    ASSERT_TRUE(h) << decode_error_name(r.error());
    EXPECT_EQ(h->native().positive(1).first, lim);
    EXPECT_EQ(h->native().negative(0).first, -lim);
    std::vector<std::byte> buf(1024);
    BatchWriter w(buf, 0, 0);
    const Family hist{FamilyType::kHistogram, 0, {}, {}};
    for (const Buckets& past : {Buckets{{lim + 1, 1}}, Buckets{{-lim - 1, 1}}}) {
      n = sample_native(past, {});
      n.schema = schema;
      EXPECT_FALSE(w.append_native("h", {}, n, hist));
      n = sample_native({}, past);
      n.schema = schema;
      EXPECT_FALSE(w.append_native("h", {}, n, hist));
    }
    EXPECT_EQ(w.sample_count(), 0u);
  }
}

TEST(SampleBatch, ReaderRefusesANativePartThatBreaksTheRulesOrRunsPastItsEntry) {
  const Buckets pos{{0, 1}, {4, 2}};
  std::size_t at = 0;
  const std::vector<std::byte> good = native_batch(sample_native(pos, {}), &at);
  const std::size_t nh = at + sizeof(SampleHeader);  // the NativeHeader
  const std::size_t b0 = nh + sizeof(NativeHeader);  // the first bucket
  struct Case {
    const char* what;
    std::size_t off;
    std::vector<std::byte> bytes;
    DecodeError want;
  };
  auto bytes_of = [](auto v) {
    std::vector<std::byte> b(sizeof v);
    std::memcpy(b.data(), &v, sizeof v);
    return b;
  };
  const std::vector<Case> cases = {
      {"bucket count past the entry", nh + offsetof(NativeHeader, positive_count), bytes_of(std::uint32_t{3}),
       DecodeError::kBadEntry},
      {"bucket counts that wrap 32 bits", nh + offsetof(NativeHeader, negative_count),
       bytes_of(std::uint32_t{0xffffffff}), DecodeError::kBadEntry},
      {"schema", nh + offsetof(NativeHeader, schema), bytes_of(std::int32_t{-5}), DecodeError::kBadNative},
      {"reset hint", nh + offsetof(NativeHeader, reset_hint), bytes_of(std::uint8_t{4}), DecodeError::kBadNative},
      {"reserved", nh + offsetof(NativeHeader, reserved), bytes_of(std::uint8_t{1}), DecodeError::kBadNative},
      {"zero threshold", nh + offsetof(NativeHeader, zero_threshold), bytes_of(-1.0), DecodeError::kBadNative},
      {"count", nh + offsetof(NativeHeader, count), bytes_of(std::numeric_limits<double>::infinity()),
       DecodeError::kBadNative},
      {"key order", b0 + sizeof(NativeBucket), bytes_of(std::int32_t{0}), DecodeError::kBadNative},
      {"bucket count", b0 + offsetof(NativeBucket, count), bytes_of(-2.0), DecodeError::kBadNative},
      // Schema 3: no double has a key beyond 1075 << 3 (the metric reader's limit too).
      {"key past the schema's limit", b0 + sizeof(NativeBucket), bytes_of(std::int32_t{(1075 << 3) + 1}),
       DecodeError::kBadNative},
      {"key below the schema's limit", b0, bytes_of(std::int32_t{-(1075 << 3) - 1}), DecodeError::kBadNative},
      {"family type", at + offsetof(SampleHeader, family_type), bytes_of(std::uint8_t{1}), DecodeError::kBadFamily},
      {"string value", at + offsetof(SampleHeader, str_len), bytes_of(std::uint16_t{1}), DecodeError::kBadFamily},
      {"in a version-2 batch", offsetof(BatchHeader, format_version), bytes_of(kFormatVersion), DecodeError::kBadKind},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    std::vector<std::byte> rec = good;
    std::memcpy(rec.data() + c.off, c.bytes.data(), c.bytes.size());
    BatchReader r(rec);
    ASSERT_TRUE(r.next());  // the gauge before it
    EXPECT_FALSE(r.next());
    EXPECT_EQ(r.error(), c.want) << decode_error_name(r.error());
  }
  BatchReader r(good);
  ASSERT_TRUE(r.next());
  ASSERT_TRUE(r.next());
}

}  // namespace ringpipe::sample
