// relabel_configs in the pipeline file: Prometheus' keys and defaults, its
// validation reported at the key at fault (file:line:column), and where the
// lists may stand (sources; metric_relabel_configs on prometheus exporters,
// write_relabel_configs on remote_write ones).
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "config_test_util.hpp"
#include "ringpipe/config/pipeline.hpp"

namespace ringpipe::config {
namespace {

using testing::has_message;
using testing::messages;

ConfigResult<relabel::Rules> rules(std::string_view yaml) { return parse_relabel_configs(yaml, "r.yaml"); }

std::string pipeline(std::string_view source_extra, std::string_view exporter_extra,
                     std::string_view exporter_type = "type: prometheus\n    listen: 0.0.0.0:9102") {
  return std::string(R"(rings:
  raw: {size: 64MiB}
  metrics: {size: 16MiB}
sources:
  statsd:
    type: statsd
    listen: [udp://0.0.0.0:9125]
    output: raw
)") + std::string(source_extra) +
         R"(processors:
  aggregate: {type: aggregate, input: raw, output: metrics}
exporters:
  out:
    )" + std::string(exporter_type) +
         R"(
    input: metrics
)" + std::string(exporter_extra);
}

TEST(RelabelConfig, ReadsEveryKeyWithPrometheusDefaults) {
  const auto r = rules(R"(
- source_labels: [job, __meta_dns_name]
  regex: "(.*)some-[regex]"
  target_label: job
  replacement: foo-${1}
- source_labels: [abc]
  target_label: cde
- replacement: static
  target_label: abc
- regex:
  replacement: static
  target_label: abc
- source_labels: [a]
  separator: ","
  modulus: 8
  target_label: shard
  action: HashMod
)");
  ASSERT_TRUE(r.has_value()) << messages(r)[0];
  const auto specs = r->specs();
  ASSERT_EQ(specs.size(), 5u);
  EXPECT_EQ(specs[0].action, relabel::Action::kReplace);
  EXPECT_EQ(specs[0].separator, ";");
  EXPECT_EQ(specs[0].regex, "(.*)some-[regex]");
  EXPECT_EQ(specs[1].regex, "(.*)");
  EXPECT_EQ(specs[1].replacement, "$1");
  EXPECT_EQ(specs[3].regex, "");  // `regex:` (null) is Prometheus' empty regex
  EXPECT_EQ(specs[4].action, relabel::Action::kHashMod);
  EXPECT_EQ(specs[4].separator, ",");
  EXPECT_EQ(specs[4].modulus, 8u);
}

TEST(RelabelConfig, ABadRegexIsAnErrorAtItsKey) {
  const auto r = rules("- source_labels: [a]\n  regex: \"(a\"\n  action: drop\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(has_message(r, "r.yaml:2:10: relabel_configs[0] regex: found \"(a\", expected a regular expression"))
      << messages(r)[0];
  EXPECT_TRUE(has_message(r, "missing )"));
  // Back-references are not Go (nor RE2) syntax.
  EXPECT_TRUE(has_message(rules("- regex: (a)\\1\n  action: labeldrop\n"), "regex"));
}

TEST(RelabelConfig, PrometheusValidationRulesAreErrorsAtTheKey) {
  EXPECT_TRUE(has_message(rules("- source_labels: [a]\n  action: replace\n"),
                          "r.yaml:1:3: relabel_configs[0] target_label: relabel configuration for replace action "
                          "requires 'target_label' value"));
  EXPECT_TRUE(has_message(rules("- source_labels: [a]\n  target_label: h\n  action: hashmod\n"),
                          "relabel_configs[0] modulus: relabel configuration for hashmod requires non-zero modulus"));
  EXPECT_TRUE(has_message(rules("- source_labels: [a]\n  target_label: 1bad\n"),
                          "r.yaml:2:17: relabel_configs[0] target_label: \"1bad\" is invalid 'target_label' for "
                          "replace action"));
  EXPECT_TRUE(has_message(rules("- source_labels: [a]\n  target_label: b\n  replacement: x\n  action: lowercase\n"),
                          "relabel_configs[0] replacement: 'replacement' can not be set for lowercase action"));
  EXPECT_TRUE(has_message(rules("- source_labels: [a]\n  regex: x\n  action: labeldrop\n"),
                          "labeldrop action requires only 'regex', and no other fields"));
  EXPECT_TRUE(has_message(rules("- source_labels: [a]\n  target_label: b\n  regex: x\n  action: keepequal\n"),
                          "keepequal action requires only 'source_labels' and `target_label`, and no other fields"));
  EXPECT_TRUE(has_message(rules("- regex: (.*)\n  replacement: -$1\n  action: labelmap\n"),
                          "\"-$1\" is invalid 'replacement' for labelmap action"));
}

TEST(RelabelConfig, UnknownKeysActionsAndShapesAreRefused) {
  EXPECT_TRUE(has_message(rules("- source_label: [a]\n  target_label: b\n"),
                          "relabel_configs[0]: found unknown key \"source_label\""));
  EXPECT_TRUE(has_message(rules("- source_labels: [a]\n  action: rename\n"),
                          "r.yaml:2:11: relabel_configs[0] action: found \"rename\", expected replace, keep, drop"));
  EXPECT_TRUE(has_message(rules("source_labels: [a]\n"), "relabel_configs: found a map, expected a list"));
  EXPECT_TRUE(has_message(rules("- source_labels: a\n  action: keep\n"),
                          "relabel_configs[0] source_labels: found \"a\", expected a list of label names"));
  EXPECT_TRUE(has_message(rules("- modulus: -1\n  target_label: h\n  action: hashmod\n"), "modulus"));
  // Every problem is reported, not only the first.
  const auto both = rules("- action: nope\n- source_labels: [a]\n  regex: \"[\"\n");
  EXPECT_EQ(messages(both).size(), 2u);
}

TEST(RelabelConfig, SourcesAndExportersTakeTheirLists) {
  const auto p = parse_pipeline(pipeline(R"(    relabel_configs:
      - source_labels: [__name__]
        regex: "debug_.*"
        action: drop
)",
                                         R"(    metric_relabel_configs:
      - regex: tmp_.*
        action: labeldrop
)"),
                                "p.yaml");
  ASSERT_TRUE(p.has_value()) << messages(p)[0];
  ASSERT_EQ(p->sources[0].relabel.specs().size(), 1u);
  EXPECT_EQ(p->sources[0].relabel.specs()[0].action, relabel::Action::kDrop);
  ASSERT_EQ(p->exporters[0].relabel.specs().size(), 1u);
  EXPECT_EQ(p->exporters[0].relabel.specs()[0].action, relabel::Action::kLabelDrop);

  const auto rw = parse_pipeline(pipeline("", R"(    write_relabel_configs:
      - source_labels: [__name__]
        regex: "up"
        action: keep
)",
                                          "type: remote_write\n    url: http://127.0.0.1:9/api/v1/write"),
                                 "p.yaml");
  ASSERT_TRUE(rw.has_value()) << messages(rw)[0];
  EXPECT_EQ(rw->exporters[0].relabel.specs().size(), 1u);

  // Each exporter type takes Prometheus' name for its list, not the other's.
  EXPECT_TRUE(has_message(parse_pipeline(pipeline("", "    write_relabel_configs: []\n"), "p.yaml"),
                          "found unknown key \"write_relabel_configs\""));
  EXPECT_TRUE(has_message(parse_pipeline(pipeline("", "    metric_relabel_configs: []\n",
                                                  "type: remote_write\n    url: http://127.0.0.1:9/api/v1/write"),
                                         "p.yaml"),
                          "found unknown key \"metric_relabel_configs\""));
  // A source's bad rule names the source, the list and the line.
  EXPECT_TRUE(
      has_message(parse_pipeline(pipeline("    relabel_configs: [{action: hashmod, target_label: x}]\n", ""), "p.yaml"),
                  "p.yaml:9:23: source \"statsd\" relabel_configs[0] modulus: relabel configuration for "
                  "hashmod requires non-zero modulus"));
}

TEST(RelabelConfig, AReloadSeesAChangedRule) {
  const auto a = parse_pipeline(pipeline("    relabel_configs: [{source_labels: [a], target_label: b}]\n", ""), "p");
  const auto b = parse_pipeline(pipeline("    relabel_configs: [{source_labels: [a], target_label: c}]\n", ""), "p");
  const auto c = parse_pipeline(pipeline("    relabel_configs: [{source_labels: [a], target_label: b}]\n", ""), "p");
  ASSERT_TRUE(a && b && c);
  EXPECT_FALSE(a->sources[0] == b->sources[0]);
  EXPECT_TRUE(a->sources[0] == c->sources[0]);
}

}  // namespace
}  // namespace ringpipe::config
