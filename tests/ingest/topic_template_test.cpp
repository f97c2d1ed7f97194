#include "ringpipe/ingest/topic_template.hpp"

#include "ringpipe/ingest/parse.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <utility>
#include <vector>

namespace ringpipe::ingest {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

struct Matched {
  bool ok = false;
  std::string name;
  Labels labels;
};

Matched match(const TopicTemplate& t, std::string_view topic) {
  std::array<sample::Tag, kMaxTags> tags{};
  TopicTemplate::Match m;
  Matched out;
  out.ok = t.match(topic, tags, m);
  out.name = std::string(m.name);
  for (std::size_t i = 0; i < m.labels; ++i) out.labels.emplace_back(tags[i].key, tags[i].value);
  return out;
}


TopicTemplate parsed(std::string_view text) {
  auto t = TopicTemplate::parse(text);
  EXPECT_TRUE(t) << text;
  return t ? std::move(*t) : TopicTemplate{};
}

TEST(TopicTemplate, CapturesLabelsAndTheMetricNameFromLevels) {
  const TopicTemplate t = parsed("sensors/+site/+device/+name");
  EXPECT_TRUE(t.captures_name());
  const Matched m = match(t, "sensors/lab/s1/temperature");
  ASSERT_TRUE(m.ok);
  EXPECT_EQ(m.name, "temperature");
  EXPECT_EQ(m.labels, (Labels{{"site", "lab"}, {"device", "s1"}}));
}

TEST(TopicTemplate, TableOfTopics) {
  struct Row {
    const char* tmpl;
    const char* topic;
    bool ok;
    const char* name;
    Labels labels;
  };
  const Row rows[] = {
      {"sensors/+site/+device/temperature", "sensors/lab/s1/temperature", true, "", {{"site", "lab"}, {"device", "s1"}}},
      {"sensors/+site/+device/temperature", "sensors/lab/s1/humidity", false, "", {}},
      {"sensors/+site/+device/temperature", "sensors/lab/s1", false, "", {}},
      {"sensors/+site/+device/temperature", "sensors/lab/s1/temperature/x", false, "", {}},
      {"sensors/+/+name", "sensors/anything/cpu", true, "cpu", {}},
      {"sensors/+site/#", "sensors/lab/a/b/c", true, "", {{"site", "lab"}}},
      {"sensors/+site/#", "sensors/lab", true, "", {{"site", "lab"}}},
      {"sensors/+site/#", "other/lab", false, "", {}},
      {"+name", "temperature", true, "temperature", {}},
      {"a/+x", "a/", true, "", {{"x", ""}}},
      {"", "any/topic/at/all", true, "", {}},
      {"#", "x/y", true, "", {}},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(std::string(r.tmpl) + " <- " + r.topic);
    const Matched m = match(parsed(r.tmpl), r.topic);
    EXPECT_EQ(m.ok, r.ok);
    if (r.ok) {
      EXPECT_EQ(m.name, r.name);
      EXPECT_EQ(m.labels, r.labels);
    }
  }
}

TEST(TopicTemplate, RefusesTemplatesThatCannotMatchAsMeant) {
  for (const char* bad : {"a/#/b", "a/b+/c", "a/+x+/c", "a/+x/+x", "a/#x"}) {
    EXPECT_FALSE(TopicTemplate::parse(bad)) << bad;
  }
  std::string many;
  for (std::size_t i = 0; i <= kMaxTags; ++i) many += "+l" + std::to_string(i) + "/";
  many += "x";
  EXPECT_FALSE(TopicTemplate::parse(many));
}

}  // namespace
}  // namespace ringpipe::ingest
