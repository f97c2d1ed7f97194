#include "ringpipe/processors/mapping.hpp"

#include "engine_harness.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace ringpipe::processors {
namespace {

using testing::regex_rule;
using testing::rule;

Matcher make(std::vector<MappingRule> rules, bool disable_ordering = false, std::size_t cache = 1000) {
  MappingConfig c;
  c.rules = std::move(rules);
  c.defaults.glob_disable_ordering = disable_ordering;
  c.cache_size = cache;
  auto m = Matcher::create(c);
  EXPECT_TRUE(m) << (m ? "" : m.error().message());
  return std::move(*m);
}

std::string label(const MatchResult& r, std::string_view name) {
  for (const auto& [k, v] : r.labels) {
    if (k == name) return v;
  }
  return "<none>";
}

struct EscapeCase {
  const char* in;
  const char* out;
};

TEST(EscapeMetricName, FollowsStatsdExporter) {
  const EscapeCase cases[] = {
      {"foo.bar", "foo_bar"},
      {"foo-bar", "foo_bar"},
      {"foo--bar", "foo_bar"},
      {"foo---bar", "foo_bar"},
      {"1foo", "_1foo"},
      {"foo bar/baz", "foo_bar_baz"},
      {"valid_name1", "valid_name1"},
      {"héllo", "h_llo"},
      {"a:b", "a_b"},
      {"", ""},
      {"-x", "_x"},
      {"foo.-bar", "foo__bar"},
  };
  for (const EscapeCase& c : cases) EXPECT_EQ(escape_metric_name(c.in), c.out) << c.in;
  EXPECT_TRUE(is_valid_metric_name("abc_1"));
  EXPECT_FALSE(is_valid_metric_name("1abc"));
  EXPECT_FALSE(is_valid_metric_name("a.b"));
}

// The escaping copies runs of valid characters at once; this is the
// byte-at-a-time rule it replaced (statsd_exporter's escapeMetricName),
// compared on random names over an alphabet of every case it handles.
std::string escape_one_byte_at_a_time(std::string_view name) {
  const auto valid = [](unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  const auto rune_width = [&](std::size_t i) -> std::size_t {
    const auto c = static_cast<unsigned char>(name[i]);
    std::size_t w = 1;
    if (c >= 0xC2 && c <= 0xDF) w = 2;
    if (c >= 0xE0 && c <= 0xEF) w = 3;
    if (c >= 0xF0 && c <= 0xF4) w = 4;
    if (w == 1 || i + w > name.size()) return 1;
    for (std::size_t k = 1; k < w; ++k) {
      if ((static_cast<unsigned char>(name[i + k]) & 0xC0) != 0x80) return 1;
    }
    return w;
  };
  std::string out;
  if (name.empty()) return out;
  if (name[0] >= '0' && name[0] <= '9') out.push_back('_');
  bool prev_dash = false;
  for (std::size_t i = 0; i < name.size();) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (valid(c)) {
      out.push_back(static_cast<char>(c));
      prev_dash = false;
      ++i;
    } else if (c == '-') {
      if (!prev_dash) out.push_back('_');
      prev_dash = true;
      ++i;
    } else {
      out.push_back('_');
      prev_dash = false;
      i += rune_width(i);
    }
  }
  return out;
}

TEST(EscapeMetricName, EqualsTheByteAtATimeRuleOnRandomNames) {
  const std::string alphabet = std::string("aZ09_-.:/ ") + "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x80\xff\xc2";
  ringpipe::testing::XorShift64 next(0x9E3779B97F4A7C15ULL);
  for (int n = 0; n < 200000; ++n) {
    std::string name(next() % 24, '\0');
    for (char& c : name) c = alphabet[next() % alphabet.size()];
    ASSERT_EQ(escape_metric_name(name), escape_one_byte_at_a_time(name)) << name;
    const std::string once = escape_one_byte_at_a_time(name);
    ASSERT_EQ(is_valid_metric_name(name), once == name) << name;
  }
}

// escapes_to() is what the mapper's name cache trusts instead of a copy of
// the name: it must hold for the escaped name and for nothing else.
TEST(EscapeMetricName, EscapesToHoldsForTheEscapedNameOnly) {
  const std::string alphabet = std::string("aZ09_-.:/ ") + "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x80\xff\xc2";
  ringpipe::testing::XorShift64 next(0x2545F4914F6CDD1DULL);
  for (int n = 0; n < 100000; ++n) {
    std::string name(next() % 24, '\0');
    for (char& c : name) c = alphabet[next() % alphabet.size()];
    for (const bool prom : {false, true}) {
      std::string escaped;
      (prom ? escape_prom_metric_name : static_cast<void (*)(std::string_view, std::string&)>(escape_metric_name))(
          name, escaped);
      ASSERT_TRUE(escapes_to(name, escaped, prom)) << name;
      ASSERT_FALSE(escapes_to(name, escaped + "_", prom)) << name;
      if (!escaped.empty()) {
        ASSERT_FALSE(escapes_to(name, escaped.substr(0, escaped.size() - 1), prom)) << name;
        std::string other = escaped;
        other[next() % other.size()] ^= 1;
        ASSERT_FALSE(escapes_to(name, other, prom)) << name;
        ASSERT_TRUE(escapes_to_valid_name(name, escaped, prom)) << name;
        std::string valid_other = escaped;
        valid_other[next() % valid_other.size()] = "_a9:"[next() % 4];
        if (prom ? is_valid_prom_metric_name(valid_other) : is_valid_metric_name(valid_other)) {
          ASSERT_EQ(escapes_to_valid_name(name, valid_other, prom), escapes_to(name, valid_other, prom)) << name;
        }
      }
    }
  }
  EXPECT_TRUE(escapes_to("job:x", "job:x", true));
  for (const bool prom : {false, true}) {  // escapes_to_valid_name() agrees on valid names of every length
    for (const std::string_view raw : {"bench.metric.1234567", "a-b.c-d", "a--b", "1ab",
                                       "ab\xc3\xa9"
                                       "cd_efghij",
                                       "x:y.z", "requests.total", "abcdefgh.ijklmnop.q", "abcdefg-", "-abcdefgh"}) {
      std::string escaped;
      (prom ? escape_prom_metric_name : static_cast<void (*)(std::string_view, std::string&)>(escape_metric_name))(
          raw, escaped);
      EXPECT_TRUE(escapes_to_valid_name(raw, escaped, prom)) << raw;
      for (std::size_t i = 0; i < escaped.size(); ++i) {
        std::string other = escaped;
        other[i] = other[i] == '_' ? 'a' : '_';
        if (!(prom ? is_valid_prom_metric_name(other) : is_valid_metric_name(other))) continue;
        EXPECT_EQ(escapes_to_valid_name(raw, other, prom), escapes_to(raw, other, prom)) << raw << " vs " << other;
      }
    }
  }
  EXPECT_FALSE(escapes_to("job:x", "job:x", false));
  EXPECT_TRUE(escapes_to("job:x", "job_x", false));
  EXPECT_TRUE(escapes_to("1a--b", "_1a_b", false));
  EXPECT_FALSE(escapes_to("1abc", "1abc", false)) << "a leading digit gains a '_'";
  EXPECT_FALSE(escapes_to("a.b", "a.b", false)) << "an invalid byte kept";
  EXPECT_TRUE(escapes_to("a-b.c", "a_b_c", false));
  EXPECT_FALSE(escapes_to("a--b", "a__b", false)) << "a run of '-' is one '_'";
  EXPECT_TRUE(escapes_to("a-_b", "a__b", false));
  EXPECT_FALSE(escapes_to("a\xc3\xa9", "a__", false)) << "a two-byte rune is one '_'";
  EXPECT_TRUE(escapes_to("a\xc3\xa9", "a_", false));
  EXPECT_TRUE(escapes_to("a\xff", "a_", false));
  EXPECT_TRUE(escapes_to("", "", false));
}

// Without a mapping file every name is unmapped, and the cache is not
// used: with 100k distinct names it missed on every sample.
TEST(Matcher, WithoutRulesNothingIsLookedUpOrCached) {
  MappingConfig cfg;
  auto m = Matcher::create(cfg);
  ASSERT_TRUE(m);
  for (int i = 0; i < 5000; ++i) {
    const std::string name = "name." + std::to_string(i);
    const MatchResult r = m->match(name, MatchClass::kCounter);
    EXPECT_EQ(r.rule, nullptr);
  }
  EXPECT_EQ(m->stats().lookups, 0u);
  EXPECT_EQ(m->stats().cache_length, 0u);
}

TEST(Matcher, GlobStarMatchesExactlyOneSegmentAndCaptures) {
  Matcher m = make({rule("test.dispatcher.*.*.*", "dispatcher_events_total",
                         {{"processor", "$1"}, {"action", "${2}"}, {"outcome", "$3"}, {"job", "test"}})});
  auto r = m.match("test.dispatcher.FooProcessor.send.success", MatchClass::kCounter);
  ASSERT_NE(r.rule, nullptr);
  EXPECT_EQ(r.name, "dispatcher_events_total");
  EXPECT_EQ(label(r, "processor"), "FooProcessor");
  EXPECT_EQ(label(r, "action"), "send");
  EXPECT_EQ(label(r, "outcome"), "success");
  EXPECT_EQ(label(r, "job"), "test");
  EXPECT_EQ(m.match("test.dispatcher.a.b", MatchClass::kCounter).rule, nullptr);
  EXPECT_EQ(m.match("test.dispatcher.a.b.c.d", MatchClass::kCounter).rule, nullptr);
}

TEST(Matcher, CaptureInNameAndDollarNameWithSuffixExpandsLikeGo) {
  Matcher m = make({rule("*.signup.*", "${1}_signups_total", {{"provider", "$2"}, {"odd", "$2_x"}})});
  auto r = m.match("web.signup.github", MatchClass::kCounter);
  ASSERT_NE(r.rule, nullptr);
  EXPECT_EQ(r.name, "web_signups_total");
  EXPECT_EQ(label(r, "provider"), "github");
  EXPECT_EQ(label(r, "odd"), "");  // "$2_x" names capture "2_x", which does not exist
}

TEST(Matcher, GlobsWinInFileOrderEvenWhenALaterRuleIsMoreSpecific) {
  Matcher m = make({rule("a.*.c", "first"), rule("a.b.c", "second")});
  EXPECT_EQ(m.match("a.b.c", MatchClass::kCounter).name, "first");
  Matcher m2 = make({rule("a.b.c", "first"), rule("a.*.c", "second")});
  EXPECT_EQ(m2.match("a.b.c", MatchClass::kCounter).name, "first");
  EXPECT_EQ(m2.match("a.x.c", MatchClass::kCounter).name, "second");
}

TEST(Matcher, OrderingBacktracksPastALiteralDeadEnd) {
  // "a.b.*" is tried first (literal b) but cannot finish on "a.b.c.d"; "a.*.c.d" can.
  Matcher m = make({rule("a.b.x.d", "literal"), rule("a.*.c.d", "star")});
  EXPECT_EQ(m.match("a.b.c.d", MatchClass::kCounter).name, "star");
}

TEST(Matcher, DisabledOrderingPrefersLiteralSegments) {
  Matcher m = make({rule("a.*.c", "star"), rule("a.b.c", "literal")}, true);
  EXPECT_EQ(m.match("a.b.c", MatchClass::kCounter).name, "literal");
  EXPECT_EQ(m.match("a.z.c", MatchClass::kCounter).name, "star");
}

TEST(Matcher, GlobsAreTriedBeforeRegexesWhateverTheFileOrder) {
  Matcher m = make({regex_rule("^a\\.(.*)$", "regex_$1"), rule("a.*", "glob")});
  EXPECT_EQ(m.match("a.b", MatchClass::kCounter).name, "glob");
  EXPECT_EQ(m.match("a.b.c", MatchClass::kCounter).name, "regex_b.c");
}

TEST(Matcher, RegexIsUnanchoredAndExpandsGroups) {
  Matcher m = make({regex_rule("requests\\.([a-z]+)\\.(\\d+)", "requests_total", {{"verb", "$1"}, {"code", "${2}"}})});
  auto r = m.match("svc.requests.get.200.extra", MatchClass::kCounter);
  ASSERT_NE(r.rule, nullptr);
  EXPECT_EQ(label(r, "verb"), "get");
  EXPECT_EQ(label(r, "code"), "200");
}

TEST(Matcher, RegexRulesAcceptGoSyntaxAsStatsdExporterWritesIt) {
  Matcher m = make({regex_rule(R"(\A(?P<svc>[a-z]+)\.requests\.(?P<code>\d+)\z)", "requests_total",
                               {{"service", "${svc}"}, {"code", "$code"}, {"raw", "$1/${2}"}}),
                    regex_rule(R"((?i)^API\.(\w+))", "api_$1", {{"path", "$1"}})});
  auto r = m.match("web.requests.200", MatchClass::kCounter);
  ASSERT_NE(r.rule, nullptr);
  EXPECT_EQ(r.name, "requests_total");
  EXPECT_EQ(label(r, "service"), "web");
  EXPECT_EQ(label(r, "code"), "200");
  EXPECT_EQ(label(r, "raw"), "web/200");
  EXPECT_EQ(m.match("x.web.requests.200", MatchClass::kCounter).rule, nullptr) << "\\A anchors at the start";
  EXPECT_EQ(m.match("web.requests.200\n", MatchClass::kCounter).rule, nullptr) << "\\z is the very end";
  auto ci = m.match("Api.Users", MatchClass::kGauge);
  ASSERT_NE(ci.rule, nullptr) << "(?i) makes the rule case-insensitive";
  EXPECT_EQ(ci.name, "api_Users");
  EXPECT_EQ(label(ci, "path"), "Users");
}

TEST(Matcher, RegexTemplatesExpandLikeGosRegexpExpand) {
  Matcher m = make({regex_rule(R"(^(?P<a>x+)(y*)\.(\w+)$)", "n",
                               {{"whole", "$0"},
                                {"dollar", "$$1"},
                                {"longest_name", "$1suffix"},
                                {"braced", "${1}suffix"},
                                {"missing", "[$9]"},
                                {"unknown_name", "[${nope}]"},
                                {"bare", "cost$"},
                                {"empty_group", "[$2]"},
                                {"leading_zero", "[$01]"}})});
  auto r = m.match("xx.tail", MatchClass::kCounter);
  ASSERT_NE(r.rule, nullptr);
  EXPECT_EQ(label(r, "whole"), "xx.tail");
  EXPECT_EQ(label(r, "dollar"), "$1");
  EXPECT_EQ(label(r, "longest_name"), "") << "$1suffix names a group '1suffix'";
  EXPECT_EQ(label(r, "braced"), "xxsuffix");
  EXPECT_EQ(label(r, "missing"), "[]");
  EXPECT_EQ(label(r, "unknown_name"), "[]");
  EXPECT_EQ(label(r, "bare"), "cost$");
  EXPECT_EQ(label(r, "empty_group"), "[]");
  EXPECT_EQ(label(r, "leading_zero"), "[]") << "Go refuses numbers with a leading zero";
}

TEST(Matcher, RegexesGoRefusesAreRefusedWithTheRuleNamed) {
  MappingConfig c;
  for (const char* bad : {R"((a)\1)", "a(?=b)", "(unclosed", "a{2,1}"}) {
    c.rules = {regex_rule(bad, "x")};
    auto r = Matcher::create(c);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().context.find("mapping rule 1 ("), std::string::npos) << r.error().context;
    EXPECT_NE(r.error().context.find("invalid regex"), std::string::npos) << r.error().context;
  }
}

TEST(Matcher, RegexRulesAreTriedInFileOrder) {
  Matcher m = make({regex_rule("^x\\.", "first"), regex_rule("^x\\.y", "second")});
  EXPECT_EQ(m.match("x.y", MatchClass::kGauge).name, "first");
}

TEST(Matcher, MatchMetricTypeRestrictsGlobAndRegexRules) {
  MappingRule c = rule("m.*", "as_counter");
  c.match_metric_type = MatchMetricType::kCounter;
  MappingRule g = rule("m.*", "as_gauge");
  g.match_metric_type = MatchMetricType::kGauge;
  MappingRule o = regex_rule("^m\\.", "as_observer");
  o.match_metric_type = MatchMetricType::kObserver;
  Matcher m = make({c, g, o});
  EXPECT_EQ(m.match("m.x", MatchClass::kCounter).name, "as_counter");
  EXPECT_EQ(m.match("m.x", MatchClass::kGauge).name, "as_gauge");
  EXPECT_EQ(m.match("m.x", MatchClass::kObserver).name, "as_observer");
}

TEST(Matcher, DropActionMatchesWithoutAName) {
  MappingRule d;
  d.match = "noisy.*";
  d.action = RuleAction::kDrop;
  Matcher m = make({d, rule("*.*", "other")});
  auto r = m.match("noisy.thing", MatchClass::kCounter);
  ASSERT_NE(r.rule, nullptr);
  EXPECT_EQ(r.rule->action, RuleAction::kDrop);
  EXPECT_EQ(m.match("quiet.thing", MatchClass::kCounter).rule->action, RuleAction::kMap);
}

TEST(Matcher, RuleSettingsFallBackToDefaults) {
  MappingRule h = rule("h.*", "h");
  h.observer_type = ObserverType::kHistogram;
  h.buckets = {1, 2, 3};
  h.ttl = std::chrono::seconds(30);
  Matcher m = make({h, rule("s.*", "s")});
  const CompiledRule* hr = m.match("h.x", MatchClass::kObserver).rule;
  ASSERT_NE(hr, nullptr);
  EXPECT_EQ(hr->observer_type, ObserverType::kHistogram);
  EXPECT_EQ(hr->buckets, (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(hr->ttl, std::chrono::seconds(30));
  const CompiledRule* sr = m.match("s.x", MatchClass::kObserver).rule;
  ASSERT_NE(sr, nullptr);
  EXPECT_EQ(sr->observer_type, ObserverType::kSummary);
  ASSERT_EQ(sr->quantiles.size(), 3u);
  EXPECT_EQ(sr->quantiles[0].quantile, 0.5);
  EXPECT_EQ(sr->quantiles[0].error, 0.05);
  EXPECT_EQ(sr->quantiles[1].quantile, 0.9);
  EXPECT_EQ(sr->quantiles[2].quantile, 0.99);
  EXPECT_EQ(sr->quantiles[2].error, 0.001);
  EXPECT_EQ(sr->max_age, std::chrono::minutes(10));
  EXPECT_EQ(sr->age_buckets, 5u);
  EXPECT_EQ(sr->ttl.count(), 0);
}

TEST(Matcher, RejectsInvalidRules) {
  MappingConfig c;
  c.rules = {rule("a.b*.c", "x")};
  EXPECT_FALSE(Matcher::create(c));
  c.rules = {rule("a..c", "x")};
  EXPECT_FALSE(Matcher::create(c));
  c.rules = {rule("a.*", "")};
  EXPECT_FALSE(Matcher::create(c));
  c.rules = {regex_rule("a(", "x")};
  auto bad = Matcher::create(c);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().context.find("mapping rule 1"), std::string::npos);
  c.rules = {rule("a.*", "x", {{"1bad", "v"}})};
  EXPECT_FALSE(Matcher::create(c));
  MappingRule h = rule("a.*", "x");
  h.buckets = {2, 1};
  c.rules = {h};
  EXPECT_FALSE(Matcher::create(c));
}

TEST(Matcher, CacheServesRepeatsAndStaysBounded) {
  Matcher m = make({rule("a.*", "a_$1")}, false, 4);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) {
      auto r = m.match("a.k" + std::to_string(i), MatchClass::kCounter);
      EXPECT_EQ(r.name, "a_k" + std::to_string(i));
    }
  }
  EXPECT_EQ(m.stats().lookups, 12u);
  EXPECT_EQ(m.stats().cache_hits, 8u);
  EXPECT_EQ(m.stats().cache_length, 4u);
  // A fifth name evicts the least recently used (k0); k3 stays.
  EXPECT_EQ(m.match("a.k4", MatchClass::kCounter).name, "a_k4");
  EXPECT_EQ(m.stats().cache_length, 4u);
  const auto hits = m.stats().cache_hits;
  EXPECT_EQ(m.match("a.k3", MatchClass::kCounter).name, "a_k3");
  EXPECT_EQ(m.stats().cache_hits, hits + 1);
  EXPECT_EQ(m.match("a.k0", MatchClass::kCounter).name, "a_k0");
  EXPECT_EQ(m.stats().cache_hits, hits + 1);
}

TEST(Matcher, RandomCacheEvictsAnyEntryWhereLruThrashes) {
  // A cyclic scan one name larger than the cache: lru always evicts the name
  // asked for next (no hit at all), random eviction keeps some of them.
  const auto hits_of = [](bool random) {
    MappingConfig c;
    c.rules = {rule("a.*", "a_$1")};
    c.cache_size = 4;
    c.cache_random = random;
    auto m = Matcher::create(c);
    EXPECT_TRUE(m);
    for (int round = 0; round < 50; ++round) {
      for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(m->match("a.k" + std::to_string(i), MatchClass::kCounter).name, "a_k" + std::to_string(i));
      }
    }
    EXPECT_EQ(m->stats().cache_length, 4u);
    return m->stats().cache_hits;
  };
  EXPECT_EQ(hits_of(false), 0u);
  EXPECT_GT(hits_of(true), 50u);
}

TEST(Matcher, CacheKeysIncludeTheMetricClass) {
  MappingRule c = rule("m.*", "as_counter");
  c.match_metric_type = MatchMetricType::kCounter;
  Matcher m = make({c});
  EXPECT_NE(m.match("m.x", MatchClass::kCounter).rule, nullptr);
  EXPECT_EQ(m.match("m.x", MatchClass::kGauge).rule, nullptr);
}

TEST(Matcher, WorksWithoutACache) {
  Matcher m = make({rule("a.*", "a_$1")}, false, 0);
  EXPECT_EQ(m.match("a.x", MatchClass::kCounter).name, "a_x");
  EXPECT_EQ(m.match("a.y", MatchClass::kCounter).name, "a_y");
}

}  // namespace
}  // namespace ringpipe::processors
