// Prometheus' relabeling, checked against its own tables: the cases of
// model/relabel/relabel_test.go (TestRelabel, TestRelabelValidate,
// TestTargetLabelLegacyValidity; same input, same output) and the examples of
// the <relabel_config> section of docs/configuration/configuration.md.
#include "ringpipe/relabel/relabel.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace ringpipe::relabel {
namespace {

using LabelMap = std::map<std::string, std::string>;

struct Case {
  std::string what;
  LabelMap input;
  std::vector<RuleSpec> rules;
  LabelMap output;  // ignored when drop
  bool drop = false;
};

RuleSpec rule(Action a) {
  RuleSpec r;
  r.action = a;
  return r;
}

RuleSpec replace(std::vector<std::string> sources, std::string regex, std::string target, std::string replacement) {
  RuleSpec r;
  r.source_labels = std::move(sources);
  r.regex = std::move(regex);
  r.target_label = std::move(target);
  r.replacement = std::move(replacement);
  return r;
}

RuleSpec with_regex(Action a, std::vector<std::string> sources, std::string regex) {
  RuleSpec r = rule(a);
  r.source_labels = std::move(sources);
  r.regex = std::move(regex);
  return r;
}

LabelMap run(const Rules& rules, const LabelMap& in, bool& kept) {
  LabelSet ls;
  for (const auto& [k, v] : in) ls.set(k, v);
  kept = rules.apply(ls);
  ls.sort();
  LabelMap out;
  for (const Label& l : ls.labels()) out[l.name] = l.value;
  return out;
}

void check(const Case& c) {
  SCOPED_TRACE(c.what);
  auto rules = Rules::compile(c.rules);
  ASSERT_TRUE(rules.has_value()) << rules.error().problem.message;
  bool kept = false;
  const LabelMap out = run(*rules, c.input, kept);
  EXPECT_EQ(kept, !c.drop);
  if (!c.drop) {
    EXPECT_EQ(out, c.output);
  }
}

// TestRelabel of model/relabel/relabel_test.go, case by case (the UTF-8 label
// name cases, which need Prometheus 3's UTF-8 scheme, are left out: ringpipe
// serves the text format, whose label names are the legacy ones).
TEST(Relabel, MatchesPrometheusRelabelTestTable) {
  std::vector<Case> cases;
  cases.push_back({"replace with ${1}",
                   {{"a", "foo"}, {"b", "bar"}, {"c", "baz"}},
                   {replace({"a"}, "f(.*)", "d", "ch${1}-ch${1}")},
                   {{"a", "foo"}, {"b", "bar"}, {"c", "baz"}, {"d", "choo-choo"}}});
  cases.push_back({"two replaces, the second sees the first",
                   {{"a", "foo"}, {"b", "bar"}, {"c", "baz"}},
                   {replace({"a", "b"}, "f(.*);(.*)r", "a", "b${1}${2}m"),
                    replace({"c", "a"}, "(b).*b(.*)ba(.*)", "d", "$1$2$2$3")},
                   {{"a", "boobam"}, {"b", "bar"}, {"c", "baz"}, {"d", "boooom"}}});
  cases.push_back({"drop stops the rules",
                   {{"a", "foo"}},
                   {with_regex(Action::kDrop, {"a"}, ".*o.*"), replace({"a"}, "f(.*)", "d", "ch$1-ch$1")},
                   {},
                   true});
  cases.push_back(
      {"drop on a match", {{"a", "foo"}, {"b", "bar"}}, {with_regex(Action::kDrop, {"a"}, ".*o.*")}, {}, true});
  cases.push_back(
      {"a group inside", {{"a", "abc"}}, {replace({"a"}, ".*(b).*", "d", "$1")}, {{"a", "abc"}, {"d", "b"}}});
  cases.push_back(
      {"drop without a match", {{"a", "foo"}}, {with_regex(Action::kDrop, {"a"}, "no-match")}, {{"a", "foo"}}});
  cases.push_back({"drop is anchored: f|o does not match foo",
                   {{"a", "foo"}},
                   {with_regex(Action::kDrop, {"a"}, "f|o")},
                   {{"a", "foo"}}});
  cases.push_back({"keep without a match", {{"a", "foo"}}, {with_regex(Action::kKeep, {"a"}, "no-match")}, {}, true});
  cases.push_back({"keep on a match", {{"a", "foo"}}, {with_regex(Action::kKeep, {"a"}, "f.*")}, {{"a", "foo"}}});
  cases.push_back(
      {"no replacement without a match", {{"a", "boo"}}, {replace({"a"}, "f", "b", "bar")}, {{"a", "boo"}}});
  cases.push_back({"a blank replacement deletes the label",
                   {{"a", "foo"}, {"f", "baz"}},
                   {replace({"a"}, "(f).*", "$1", "$2")},
                   {{"a", "foo"}}});
  {
    RuleSpec h = rule(Action::kHashMod);
    h.source_labels = {"c"};
    h.target_label = "d";
    h.modulus = 1000;
    cases.push_back({"hashmod",
                     {{"a", "foo"}, {"b", "bar"}, {"c", "baz"}},
                     {h},
                     {{"a", "foo"}, {"b", "bar"}, {"c", "baz"}, {"d", "976"}}});
    h.source_labels = {"a"};
    h.target_label = "b";
    cases.push_back({"hashmod of a value with a newline", {{"a", "foo\nbar"}}, {h}, {{"a", "foo\nbar"}, {"b", "734"}}});
  }
  {
    RuleSpec m = rule(Action::kLabelMap);
    m.regex = "(b.*)";
    m.replacement = "bar_${1}";
    cases.push_back({"labelmap",
                     {{"a", "foo"}, {"b1", "bar"}, {"b2", "baz"}},
                     {m},
                     {{"a", "foo"}, {"b1", "bar"}, {"b2", "baz"}, {"bar_b1", "bar"}, {"bar_b2", "baz"}}});
    m.regex = "__meta_(my.*)";
    m.replacement = "${1}";
    cases.push_back({"labelmap of __meta_ labels",
                     {{"a", "foo"}, {"__meta_my_bar", "aaa"}, {"__meta_my_baz", "bbb"}, {"__meta_other", "ccc"}},
                     {m},
                     {{"a", "foo"},
                      {"__meta_my_bar", "aaa"},
                      {"__meta_my_baz", "bbb"},
                      {"__meta_other", "ccc"},
                      {"my_bar", "aaa"},
                      {"my_baz", "bbb"}}});
  }
  cases.push_back({"target from a group",
                   {{"a", "some-name-value"}},
                   {replace({"a"}, "some-([^-]+)-([^,]+)", "${1}", "${2}")},
                   {{"a", "some-name-value"}, {"name", "value"}}});
  cases.push_back({"a replacement of a missing group is empty: nothing set",
                   {{"a", "some-name-value"}},
                   {replace({"a"}, "some-([^-]+)-([^,]+)", "${1}", "${3}")},
                   {{"a", "some-name-value"}}});
  cases.push_back(
      {"a target of a missing group is invalid: skipped",
       {{"a", "some-name-0"}},
       {replace({"a"}, "some-([^-]+)-([^,]+)", "${3}", "${1}"), replace({"a"}, "some-([^-]+)-([^,]+)", "${3}", "${1}"),
        replace({"a"}, "some-([^-]+)(-[^,]+)", "${3}", "${1}")},
       {{"a", "some-name-0"}}});
  cases.push_back({"service discovery tags",
                   {{"__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar"}},
                   {replace({"__meta_sd_tags"}, "(?:.+,|^)path:(/[^,]+).*", "__metrics_path__", "${1}"),
                    replace({"__meta_sd_tags"}, "(?:.+,|^)job:([^,]+).*", "job", "${1}"),
                    replace({"__meta_sd_tags"}, "(?:.+,|^)label:([^=]+)=([^,]+).*", "${1}", "${2}")},
                   {{"__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar"},
                    {"__metrics_path__", "/secret"},
                    {"job", "some-job"},
                    {"foo", "bar"}}});
  {
    RuleSpec d = rule(Action::kLabelDrop);
    d.regex = "^__meta_kubernetes_pod_container_port_name$";
    cases.push_back({"prometheus issue 12283",
                     {{"__meta_kubernetes_pod_container_port_name", "foo"},
                      {"__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"}},
                     {d,
                      replace({"__meta_kubernetes_pod_annotation_XXX_metrics_port"}, "(.+)",
                              "__meta_kubernetes_pod_container_port_name", "metrics"),
                      with_regex(Action::kKeep, {"__meta_kubernetes_pod_container_port_name"}, "^metrics$")},
                     {{"__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"},
                      {"__meta_kubernetes_pod_container_port_name", "metrics"}}});
  }
  {
    RuleSpec k = rule(Action::kLabelKeep);
    k.regex = "(b.*)";
    cases.push_back({"labelkeep", {{"a", "foo"}, {"b1", "bar"}, {"b2", "baz"}}, {k}, {{"b1", "bar"}, {"b2", "baz"}}});
    k.action = Action::kLabelDrop;
    cases.push_back({"labeldrop", {{"a", "foo"}, {"b1", "bar"}, {"b2", "baz"}}, {k}, {{"a", "foo"}}});
  }
  {
    RuleSpec up = rule(Action::kUppercase);
    up.source_labels = {"foo"};
    up.target_label = "foo_uppercase";
    RuleSpec low = rule(Action::kLowercase);
    low.source_labels = {"foo"};
    low.target_label = "foo_lowercase";
    cases.push_back({"uppercase and lowercase",
                     {{"foo", "bAr123Foo"}},
                     {up, low},
                     {{"foo", "bAr123Foo"}, {"foo_lowercase", "bar123foo"}, {"foo_uppercase", "BAR123FOO"}}});
  }
  {
    const LabelMap ports{{"__tmp_port", "1234"}, {"__port1", "1234"}, {"__port2", "5678"}};
    RuleSpec e = rule(Action::kKeepEqual);
    e.source_labels = {"__tmp_port"};
    e.target_label = "__port1";
    cases.push_back({"keepequal, equal", ports, {e}, ports});
    e.action = Action::kDropEqual;
    cases.push_back({"dropequal, equal", ports, {e}, {}, true});
    e.target_label = "__port2";
    cases.push_back({"dropequal, different", ports, {e}, ports});
    e.action = Action::kKeepEqual;
    cases.push_back({"keepequal, different", ports, {e}, {}, true});
  }
  cases.push_back({"the regex's . matches a newline (?s)",
                   {{"a", "line1\nline2"}, {"b", "bar"}, {"c", "baz"}},
                   {replace({"a"}, "line1.*line2", "d", "match${1}")},
                   {{"a", "line1\nline2"}, {"b", "bar"}, {"c", "baz"}, {"d", "match"}}});
  cases.push_back({"named groups, (?<name>) and $name",
                   {{"a", "line1\nline2"}, {"b", "bar"}, {"c", "baz"}},
                   {replace({"a"}, "(line1).*(?<second>line2)", "label1_${1}", "val_${second}"),
                    replace({"a"}, "(line1).*(?<second>line2)", "label2_$1", "val_$second")},
                   {{"a", "line1\nline2"},
                    {"b", "bar"},
                    {"c", "baz"},
                    {"label1_line1", "val_line2"},
                    {"label2_line1", "val_line2"}}});
  cases.push_back({"__type__ from the name",
                   {{"__name__", "http_requests_total"}},
                   {replace({"__name__"}, ".*_total$", "__type__", "counter")},
                   {{"__name__", "http_requests_total"}, {"__type__", "counter"}}});
  cases.push_back({"__unit__ from the name",
                   {{"__name__", "disk_usage_bytes"}},
                   {replace({"__name__"}, ".*_bytes$", "__unit__", "bytes")},
                   {{"__name__", "disk_usage_bytes"}, {"__unit__", "bytes"}}});
  for (const Case& c : cases) check(c);
}

// The examples of Prometheus' <relabel_config> documentation.
TEST(Relabel, MatchesPrometheusDocumentationExamples) {
  // "replacement: $1" with "regex: (.*)" copies; a static replacement without source labels sets.
  {
    RuleSpec r;
    r.target_label = "env";
    r.replacement = "production";
    check({"a static label", {{"__name__", "up"}}, {r}, {{"__name__", "up"}, {"env", "production"}}});
  }
  // Rename a metric: source_labels [__name__], regex, target_label __name__.
  check({"rename a metric",
         {{"__name__", "node_cpu_seconds_total"}, {"mode", "idle"}},
         {replace({"__name__"}, "node_(.*)", "__name__", "host_$1")},
         {{"__name__", "host_cpu_seconds_total"}, {"mode", "idle"}}});
  // Drop expensive metrics by name.
  check({"drop by name",
         {{"__name__", "go_gc_duration_seconds"}},
         {with_regex(Action::kDrop, {"__name__"}, "go_.*")},
         {},
         true});
  // Keep only one job's series.
  check({"keep by two labels joined",
         {{"__name__", "up"}, {"job", "api"}, {"env", "prod"}},
         {with_regex(Action::kKeep, {"job", "env"}, "api;prod")},
         {{"__name__", "up"}, {"job", "api"}, {"env", "prod"}}});
  // Shard by a hash of the address, keep shard 0 (the doc's hashmod example).
  {
    RuleSpec h = rule(Action::kHashMod);
    h.source_labels = {"instance"};
    h.target_label = "__tmp_hash";
    h.modulus = 2;
    RuleSpec k = with_regex(Action::kKeep, {"__tmp_hash"}, "0");
    RuleSpec d = rule(Action::kLabelDrop);
    d.regex = "__tmp_hash";
    const auto rules = Rules::compile({h, k, d});
    ASSERT_TRUE(rules.has_value());
    // md5's last 8 bytes mod 2 (Python's hashlib): host-0 -> 0, host-2 -> 1.
    bool kept = false;
    EXPECT_EQ(run(*rules, {{"instance", "host-0:9100"}}, kept), (LabelMap{{"instance", "host-0:9100"}}));
    EXPECT_TRUE(kept);
    (void)run(*rules, {{"instance", "host-2:9100"}}, kept);
    EXPECT_FALSE(kept);
  }
}

TEST(Relabel, HashmodIsMd5LastEightBytesBigEndian) {
  // md5("") = d41d8cd98f00b204 e9800998ecf8427e: the value of a missing label is "".
  RuleSpec h = rule(Action::kHashMod);
  h.source_labels = {"missing"};
  h.target_label = "h";
  h.modulus = 0xFFFFFFFFFFFFFFFFull;
  const auto rules = Rules::compile({h});
  ASSERT_TRUE(rules.has_value());
  bool kept = false;
  const LabelMap out = run(*rules, {{"a", "b"}}, kept);
  ASSERT_TRUE(kept);
  EXPECT_EQ(out.at("h"), std::to_string(0xe9800998ecf8427eull % 0xFFFFFFFFFFFFFFFFull));
}

TEST(Relabel, ExpandsAsGoRegexpExpand) {
  // $$ is a dollar, $1x names group "1x" (none: empty), ${1}x is group 1 then x,
  // a malformed ${ is text, a leading zero is a name, not a number.
  const std::vector<std::pair<std::string, std::string>> table{
      {"$$1", "$1"}, {"$1x", ""},   {"${1}x", "abcx"},      {"x${", "x${"},    {"$", "$"},
      {"${01}", ""}, {"$0", "abc"}, {"${name}-$2", "abc-"}, {"a$name", "aabc"}};
  for (const auto& [replacement, want] : table) {
    SCOPED_TRACE(replacement);
    RuleSpec r = replace({"v"}, "(?P<name>a.c)", "out", replacement);
    const auto rules = Rules::compile({r});
    ASSERT_TRUE(rules.has_value()) << rules.error().problem.message;
    bool kept = false;
    const LabelMap out = run(*rules, {{"v", "abc"}}, kept);
    ASSERT_TRUE(kept);
    if (want.empty()) {
      EXPECT_EQ(out.count("out"), 0u);
    } else {
      EXPECT_EQ(out.at("out"), want);
    }
  }
}

TEST(Relabel, DefaultsAreReplaceSemicolonCatchAllDollarOne) {
  RuleSpec r;
  r.source_labels = {"a", "b"};
  r.target_label = "joined";
  const auto rules = Rules::compile({r});
  ASSERT_TRUE(rules.has_value());
  bool kept = false;
  EXPECT_EQ(run(*rules, {{"a", "x"}, {"b", "y"}}, kept), (LabelMap{{"a", "x"}, {"b", "y"}, {"joined", "x;y"}}));
  // A missing source label joins as "".
  EXPECT_EQ(run(*rules, {{"b", "y"}}, kept), (LabelMap{{"b", "y"}, {"joined", ";y"}}));
}

TEST(Relabel, EmptyRulesKeepEverything) {
  const Rules none;
  EXPECT_TRUE(none.empty());
  bool kept = false;
  EXPECT_EQ(run(none, {{"a", "1"}}, kept), (LabelMap{{"a", "1"}}));
  EXPECT_TRUE(kept);
}

TEST(Relabel, ComparesByTheRulesAsWritten) {
  const auto a = Rules::compile({replace({"a"}, "(.*)", "b", "$1")});
  const auto b = Rules::compile({replace({"a"}, "(.*)", "b", "$1")});
  const auto c = Rules::compile({replace({"a"}, "(.+)", "b", "$1")});
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(*a, *b);
  EXPECT_FALSE(*a == *c);
}

TEST(Relabel, ParsesActionsCaseInsensitively) {
  EXPECT_EQ(parse_action("LabelMap"), Action::kLabelMap);
  EXPECT_EQ(parse_action("keepequal"), Action::kKeepEqual);
  EXPECT_EQ(parse_action("HASHMOD"), Action::kHashMod);
  EXPECT_FALSE(parse_action("rename").has_value());
  for (Action a :
       {Action::kReplace, Action::kKeep, Action::kDrop, Action::kKeepEqual, Action::kDropEqual, Action::kHashMod,
        Action::kLabelMap, Action::kLabelDrop, Action::kLabelKeep, Action::kLowercase, Action::kUppercase}) {
    EXPECT_EQ(parse_action(action_name(a)), a);
  }
}

// TestRelabelValidate (legacy scheme) and Prometheus' Validate() rules.
TEST(RelabelValidate, RefusesWhatPrometheusRefuses) {
  struct V {
    RuleSpec rule;
    std::string key;      // "" = valid
    std::string message;  // a part of it
  };
  std::vector<V> table;
  table.push_back({rule(Action::kReplace), "target_label", "requires 'target_label' value"});
  table.push_back({rule(Action::kLowercase), "target_label", "requires 'target_label' value"});
  {
    RuleSpec r = rule(Action::kLowercase);
    r.target_label = "${3}";
    table.push_back({r, "target_label", "\"${3}\" is invalid 'target_label' for lowercase action"});
  }
  table.push_back({replace({"a"}, "some-([^-]+)-([^,]+)", "${3}", "${1}"), "", ""});
  table.push_back({replace({"a"}, "some-([^-]+)-([^,]+)", "0${3}", "${1}"), "target_label", "is invalid"});
  table.push_back({replace({"a"}, "some-([^-]+)-([^,]+)", "-${3}", "${1}"), "target_label", "is invalid"});
  table.push_back({replace({"a"}, "x", "1abc", "y"), "target_label", "\"1abc\" is invalid 'target_label'"});
  {
    RuleSpec r = rule(Action::kLabelMap);
    r.regex = "__meta_kubernetes_pod_label_(strimzi_io_.+)";
    table.push_back({r, "", ""});
    r.regex = "__meta_(.+)";
    r.replacement = "${1}";
    table.push_back({r, "", ""});
    r.replacement = "-${1}";
    table.push_back({r, "replacement", "is invalid 'replacement' for labelmap action"});
  }
  {
    RuleSpec r = rule(Action::kHashMod);
    r.target_label = "h";
    table.push_back({r, "modulus", "requires non-zero modulus"});
    r.modulus = 4;
    table.push_back({r, "", ""});
    r.target_label = "h-1";
    table.push_back({r, "target_label", "is invalid 'target_label' for hashmod action"});
  }
  {
    RuleSpec r = rule(Action::kUppercase);
    r.target_label = "u";
    r.replacement = "x";
    table.push_back({r, "replacement", "'replacement' can not be set for uppercase action"});
  }
  {
    RuleSpec r = rule(Action::kKeepEqual);
    r.source_labels = {"a"};
    r.target_label = "b";
    table.push_back({r, "", ""});
    r.regex = "x";
    table.push_back({r, "regex", "keepequal action requires only 'source_labels' and `target_label`"});
    r.regex = std::string(kDefaultRegex);
    r.separator = ",";
    table.push_back({r, "separator", "requires only 'source_labels' and `target_label`"});
  }
  {
    RuleSpec r = rule(Action::kLabelDrop);
    r.regex = "tmp_.*";
    table.push_back({r, "", ""});
    r.source_labels = {"a"};
    table.push_back({r, "source_labels", "labeldrop action requires only 'regex', and no other fields"});
    r.source_labels.clear();
    r.target_label = "x";
    r.action = Action::kLabelKeep;
    table.push_back({r, "target_label", "labelkeep action requires only 'regex', and no other fields"});
  }
  table.push_back({with_regex(Action::kDrop, {"a"}, "(a"), "regex", "does not compile: missing )"});
  table.push_back({with_regex(Action::kDrop, {"a"}, "(a)\\1"), "regex", "does not compile"});
  table.push_back({with_regex(Action::kDrop, {"a"}, "a(?=b)"), "regex", "does not compile"});
  for (std::size_t i = 0; i < table.size(); ++i) {
    SCOPED_TRACE(i);
    const auto p = validate(table[i].rule);
    if (table[i].key.empty()) {
      EXPECT_FALSE(p.has_value()) << p->message;
      continue;
    }
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->key, table[i].key);
    EXPECT_NE(p->message.find(table[i].message), std::string::npos) << p->message;
  }
}

TEST(RelabelValidate, CompileNamesTheRuleAtFault) {
  const auto r = Rules::compile({replace({"a"}, "(.*)", "b", "$1"), with_regex(Action::kKeep, {"a"}, "[")});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().index, 1u);
  EXPECT_EQ(r.error().problem.key, "regex");
}

// TestTargetLabelLegacyValidity: a replace target with $ references.
TEST(RelabelValidate, TargetLabelTemplatesAsPrometheusLegacy) {
  const std::vector<std::pair<std::string, bool>> table{{"-label", false},
                                                        {"label", true},
                                                        {"label${1}", true},
                                                        {"${1}label", true},
                                                        {"${1}", true},
                                                        {"${", false},
                                                        {"$", false},
                                                        {"${}", false},
                                                        {"foo${", false},
                                                        {"$1", true},
                                                        {"asd$2asd", true},
                                                        {"-foo${1}bar-", false},
                                                        {"bar.foo${1}bar", false},
                                                        {"_${1}_", true},
                                                        {"foo${bar}foo", true}};
  for (const auto& [target, valid] : table) {
    SCOPED_TRACE(target);
    EXPECT_EQ(!validate(replace({"a"}, "(.*)", target, "x")).has_value(), valid);
  }
}

TEST(LabelSet, EmptyValueRemovesAndSortOrdersByName) {
  LabelSet ls;
  ls.set("b", "2");
  ls.set("a", "1");
  ls.set("c", "3");
  ls.set("b", "");
  EXPECT_EQ(ls.size(), 2u);
  EXPECT_EQ(ls.get("b"), "");
  ls.sort();
  ASSERT_EQ(ls.labels().size(), 2u);
  EXPECT_EQ(ls.labels()[0].name, "a");
  EXPECT_EQ(ls.labels()[1].name, "c");
  ls.clear();
  EXPECT_EQ(ls.size(), 0u);
  EXPECT_EQ(ls.get("a"), "");
}

}  // namespace
}  // namespace ringpipe::relabel
