// FlatIndex keeps only the low 32 bits of each hash: hashes that share them
// must still resolve by the caller's full-key check, through growth and
// backward-shift deletion.

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "family_registry.hpp"
#include "flat_index.hpp"
#include "hash.hpp"
#include "test_support.hpp"

namespace ringpipe::processors::detail {
namespace {

// hash_mem reads a key's last bytes as overlapping words: every byte of every
// length up to 40 must still count, the length itself too (a key and the
// same key with a trailing zero byte differ), and equal keys hash equal.
TEST(HashMem, EveryByteOfEveryLengthAndTheLengthChangeTheHash) {
  std::set<std::uint64_t> seen;
  for (std::size_t n = 0; n <= 40; ++n) {
    std::string key(n, 'a');
    for (std::size_t i = 0; i < n; ++i) key[i] = static_cast<char>('a' + (i * 7) % 26);
    const std::uint64_t h = hash_mem(key.data(), key.size(), 5);
    EXPECT_EQ(h, hash_mem(std::string(key).data(), n, 5));
    EXPECT_NE(h, hash_mem(key.data(), n, 6)) << n;
    EXPECT_TRUE(seen.insert(h).second) << "length " << n;
    for (std::size_t i = 0; i < n; ++i) {
      std::string flipped = key;
      flipped[i] = static_cast<char>(flipped[i] ^ 0x01);
      EXPECT_NE(h, hash_mem(flipped.data(), n, 5)) << "length " << n << " byte " << i;
    }
    const std::string zero_tail = key + std::string(1, '\0');
    EXPECT_NE(h, hash_mem(zero_tail.data(), zero_tail.size(), 5)) << n;
  }
}

TEST(FlatIndex, ResolvesHashesThatShareTheirLow32BitsByTheFullKeyThroughGrowthAndErase) {
  FlatIndex index;
  std::vector<std::uint64_t> keys;  // value v has full hash keys[v]
  // Groups of 4 hashes with equal low 32 bits (and so the same home slot),
  // interleaved with unrelated ones, enough to grow the table several times.
  for (std::uint64_t g = 0; g < 500; ++g) {
    for (std::uint64_t hi = 1; hi <= 4; ++hi) keys.push_back((hi << 32) | (g * 2654435761U & 0xffffffffU));
    keys.push_back(g * 0x9e3779b97f4a7c15ULL);
  }
  auto find = [&](std::uint64_t h) { return index.find(h, [&](std::uint32_t v) { return keys[v] == h; }); };
  for (std::uint32_t v = 0; v < keys.size(); ++v) {
    ASSERT_EQ(find(keys[v]), FlatIndex::kNone);
    index.insert(keys[v], v);
  }
  EXPECT_EQ(index.size(), keys.size());
  for (std::uint32_t v = 0; v < keys.size(); ++v) ASSERT_EQ(find(keys[v]), v);
  EXPECT_EQ(find((std::uint64_t{9} << 32) | (7 * 2654435761U & 0xffffffffU)), FlatIndex::kNone);
  // Erase every other member of each collision group; the rest stay findable.
  for (std::uint32_t v = 0; v < keys.size(); v += 2) ASSERT_TRUE(index.erase(keys[v], v));
  EXPECT_FALSE(index.erase(keys[0], 0));
  for (std::uint32_t v = 0; v < keys.size(); ++v) {
    ASSERT_EQ(find(keys[v]), v % 2 == 0 ? FlatIndex::kNone : v) << v;
  }
}

// Slot counts alternate powers of two and 1.5 times them; a home is always a
// slot, the highest tags' homes the last slots, and distance() wraps.
TEST(ProbeSpan, GrowsByHalfThenByAThirdAndHomesEveryTagInside) {
  std::vector<std::size_t> seq{common::ProbeSpan::grown(0)};
  while (seq.size() < 8) seq.push_back(common::ProbeSpan::grown(seq.back()));
  EXPECT_EQ(seq, (std::vector<std::size_t>{16, 24, 32, 48, 64, 96, 128, 192}));
  EXPECT_EQ(common::ProbeSpan::for_keys(1'000'000, 7, 10), 1'572'864u) << "1.5 Mi slots, not 2 Mi";
  EXPECT_EQ(common::ProbeSpan::for_keys(17, 7, 10), 32u);
  for (const std::size_t n : {16UL, 24UL, 1'572'864UL, std::size_t{1} << 32}) {
    const common::ProbeSpan span(n);
    EXPECT_EQ(span.home(0), 0u);
    EXPECT_EQ(span.home(UINT32_MAX), n - 1);
    EXPECT_EQ(span.next(n - 1), 0u);
    EXPECT_EQ(span.distance(n - 1, 1), 2u);
    EXPECT_EQ(span.distance(1, n - 1), n - 2);
  }
}

// Against std::unordered_map, through every growth step up to 1.5 * 2^14
// slots and erases at each size: tags crowd the last slots so that runs wrap
// past the end of the array, where backward shift must wrap too.
TEST(FlatIndex, AgreesWithAMapThroughGrowthAndErasesWhereRunsWrap) {
  FlatIndex index;
  std::unordered_map<std::uint64_t, std::uint32_t> want;
  testing::XorShift64 next(0x853c49e6748fea9bULL);
  std::vector<std::uint64_t> live;
  for (std::uint32_t v = 0; v < 16'000; ++v) {
    std::uint64_t h = next();
    if (v % 3 == 0) h = (h & ~std::uint64_t{0xffffffff}) | (0xffffff00U | (h & 0xff));  // a high tag: the last slots
    if (want.count(h) != 0) continue;
    index.insert(h, v);
    want[h] = v;
    live.push_back(h);
    if (v % 5 == 4) {  // erase one live key of the ones so far
      const std::size_t at = next() % live.size();
      ASSERT_TRUE(index.erase(live[at], want[live[at]]));
      want.erase(live[at]);
      live[at] = live.back();
      live.pop_back();
    }
    if (v % 997 == 0) {
      for (const auto& [key, value] : want) {
        ASSERT_EQ(index.find(key, [&](std::uint32_t got) { return got == value; }), value) << v;
      }
    }
  }
  EXPECT_EQ(index.size(), want.size());
  for (const auto& [key, value] : want) {
    ASSERT_EQ(index.find(key, [&](std::uint32_t got) { return got == value; }), value);
  }
  EXPECT_EQ(index.find(1, [](std::uint32_t) { return true; }), FlatIndex::kNone);
}

// The registry keeps each family's name in its own arena: names longer and
// more than fit one block, registered from strings that are gone by then,
// are found again by name as the same family, its name intact; a summary's
// suffix rule still sees them.
TEST(FamilyRegistry, FamiliesKeepTheirNamesAndAreFoundAgainByName) {
  FamilyRegistry registry{100000, 1000000, 1000};
  std::vector<Family*> families;
  const auto name = [](int i) {
    return "family_" + std::string(static_cast<std::size_t>(i % 9) * 30, 'n') + std::to_string(i);
  };
  for (int i = 0; i < 5000; ++i) {
    const auto lk = registry.get_or_create(name(i), FamilyKind::kCounter, "Help.");
    ASSERT_NE(lk.family, nullptr);
    ASSERT_FALSE(lk.conflict);
    families.push_back(lk.family);
  }
  EXPECT_EQ(registry.size(), 5000u);
  for (int i = 0; i < 5000; ++i) {
    const std::string n = name(i);
    ASSERT_EQ(families[static_cast<std::size_t>(i)]->name(), n);
    EXPECT_EQ(registry.texts(*families[static_cast<std::size_t>(i)]).help, "Help.");
    const auto again = registry.get_or_create(n, FamilyKind::kCounter, "Other help.");
    EXPECT_EQ(again.family, families[static_cast<std::size_t>(i)]) << n;
    EXPECT_EQ(registry.get_or_create(n, FamilyKind::kGauge, "").conflict, true) << "one kind per name";
  }
  EXPECT_EQ(registry.size(), 5000u);
  const auto summary = registry.get_or_create(name(17).substr(0, name(17).size() - 6), FamilyKind::kSummary, "");
  ASSERT_NE(summary.family, nullptr);
  const auto sum = registry.get_or_create(std::string(summary.family->name()) + "_sum", FamilyKind::kGauge, "");
  EXPECT_TRUE(sum.conflict) << "a summary owns its _sum";
}

// A family's name length is 16 bits (as a state file's family block's): a
// longer name is refused, never cut.
TEST(FamilyRegistry, NamesLongerThanAFamilyMayHaveAreRefused) {
  FamilyRegistry registry{100, 100, 100};
  const std::string longest(FamilyRegistry::kMaxNameBytes, 'n');
  const auto ok = registry.get_or_create(longest, FamilyKind::kCounter, "");
  ASSERT_NE(ok.family, nullptr);
  EXPECT_EQ(ok.family->name(), longest);
  EXPECT_EQ(registry.get_or_create(longest + "n", FamilyKind::kCounter, "").family, nullptr);
  EXPECT_EQ(registry.size(), 1u);
}

// Every family's name is one Prometheus takes: the mapper escapes names, and
// a name from anywhere else (a crafted state file) that is not valid is refused.
TEST(FamilyRegistry, OnlyValidMetricNamesBecomeFamilies) {
  FamilyRegistry registry{100, 100, 100};
  for (const std::string_view bad : {"a.b", "1a", "a b", "a\nb", "a{b", "", "job:x"}) {
    EXPECT_EQ(registry.get_or_create(bad, FamilyKind::kCounter, "").family, nullptr) << bad;
  }
  EXPECT_EQ(registry.get_or_create("a:b.c", FamilyKind::kGauge, "", PromFamily{2, 0, {}}).family, nullptr);
  EXPECT_NE(registry.get_or_create("job:x", FamilyKind::kGauge, "", PromFamily{2, 0, {}}).family, nullptr)
      << "':' is valid in a Prometheus family's name";
  EXPECT_NE(registry.get_or_create("_a1", FamilyKind::kCounter, "").family, nullptr);
  EXPECT_EQ(registry.size(), 2u);
}

// Drop counts live beside the families, made on a family's first drop.
TEST(FamilyRegistry, DropCountsAreKeptPerFamily) {
  FamilyRegistry registry{5000, 100, 100};
  const auto a = registry.get_or_create("a", FamilyKind::kCounter, "");
  ASSERT_NE(a.family, nullptr);
  Family* far = nullptr;
  for (int i = 0; i < 3000; ++i) far = registry.get_or_create("f" + std::to_string(i), FamilyKind::kGauge, "").family;
  ASSERT_NE(far, nullptr);
  EXPECT_EQ(registry.drops(*a.family).conflict, 0u);
  registry.count_conflict(*a.family);
  registry.count_conflict(*a.family);
  registry.count_cardinality_drop(*far);
  EXPECT_EQ(registry.drops(*a.family).conflict, 2u);
  EXPECT_EQ(registry.drops(*a.family).cardinality, 0u);
  EXPECT_EQ(registry.drops(*far).cardinality, 1u);
  EXPECT_EQ(registry.drops(*far).conflict, 0u);
  EXPECT_EQ(registry.drops(registry.at(1)).cardinality, 0u);
}

// A family's HELP and UNIT are kept as one interned pair: families with the
// same pair share it, and each family reads back the pair it was made with
// (the same HELP with another UNIT, or the same UNIT with another HELP, is
// another pair).
TEST(FamilyRegistry, HelpAndUnitAreInternedAsOnePairPerFamily) {
  FamilyRegistry registry{100, 100, 100};
  const auto a = registry.get_or_create("a", FamilyKind::kCounter, "Shared help.");
  const auto b = registry.get_or_create("b", FamilyKind::kGauge, "Shared help.");
  const auto c = registry.get_or_create("c_seconds", FamilyKind::kGauge, "Shared help.", PromFamily{2, 0, "seconds"});
  const auto d = registry.get_or_create("d_bytes", FamilyKind::kGauge, "Other help.", PromFamily{2, 0, "bytes"});
  const auto e = registry.get_or_create("e_seconds", FamilyKind::kGauge, "Shared help.", PromFamily{2, 0, "seconds"});
  const auto f = registry.get_or_create("f", FamilyKind::kGauge, "");
  for (const auto* lk : {&a, &b, &c, &d, &e, &f}) ASSERT_NE(lk->family, nullptr);
  EXPECT_EQ(a.family->texts_id, b.family->texts_id) << "one copy of a HELP many families share";
  EXPECT_EQ(c.family->texts_id, e.family->texts_id);
  EXPECT_NE(a.family->texts_id, c.family->texts_id);
  EXPECT_EQ(registry.texts(*a.family).help, "Shared help.");
  EXPECT_EQ(registry.texts(*a.family).unit, "");
  EXPECT_EQ(registry.texts(*c.family).help, "Shared help.");
  EXPECT_EQ(registry.texts(*c.family).unit, "seconds");
  EXPECT_EQ(registry.texts(*d.family).help, "Other help.");
  EXPECT_EQ(registry.texts(*d.family).unit, "bytes");
  EXPECT_EQ(registry.texts(*f.family).help, "");
  EXPECT_EQ(registry.texts(*f.family).unit, "");
  EXPECT_EQ(registry.texts(*registry.get_or_create("a", FamilyKind::kCounter, "Later help.").family).help,
            "Shared help.")
      << "the first HELP stays";
}

}  // namespace
}  // namespace ringpipe::processors::detail
