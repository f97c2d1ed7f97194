#include "ringpipe/ingest/topic_template.hpp"

#include "ringpipe/ingest/parse.hpp"

#include <gtest/gtest.h>
#include <mosquitto.h>

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
      {"sensors/+site/+device/temperature",
       "sensors/lab/s1/temperature",
       true,
       "",
       {{"site", "lab"}, {"device", "s1"}}},
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
      // Empty levels are levels, in the template as in the topic (MQTT 4.7.3).
      {"a//+name", "a//x", true, "x", {}},
      {"/+name", "/temp", true, "temp", {}},
      {"+x/+name", "/temp", true, "temp", {{"x", ""}}},
      // A template that starts with a wildcard does not fit a "$" topic (MQTT
      // 4.7.2); one that names "$SYS" does. Both used to match.
      {"#", "$SYS/broker/load", false, "", {}},
      {"+site/+name", "$SYS/load", false, "", {}},
      {"$SYS/broker/+name", "$SYS/broker/load", true, "load", {}},
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

// TopicTemplate matches a topic exactly when a subscription to the same
// filter (labels as plain '+') receives it from a broker: checked against
// libmosquitto's own matcher for every short filter and topic over a small
// alphabet.
TEST(TopicTemplate, MatchesWhatLibmosquittoDeliversToTheSameFilter) {
  const std::vector<std::string> filter_parts = {"a", "+", "+x", "#", "/", "$s", ""};
  const std::vector<std::string> topic_parts = {"a", "b", "/", "$s", ""};
  auto all = [](const std::vector<std::string>& parts, std::size_t depth) {
    std::vector<std::string> out = {""}, layer = {""};
    for (std::size_t d = 0; d < depth; ++d) {
      std::vector<std::string> next;
      for (const auto& s : layer)
        for (const auto& p : parts) next.push_back(s + p);
      out.insert(out.end(), next.begin(), next.end());
      layer = std::move(next);
    }
    return out;
  };
  std::size_t compared = 0;
  for (const std::string& tmpl : all(filter_parts, 4)) {
    auto t = TopicTemplate::parse(tmpl);
    std::string filter = tmpl;  // "+x" levels as "+"
    for (std::size_t at = 0; (at = filter.find("+x", at)) != std::string::npos;) filter.erase(at + 1, 1);
    const bool broker_takes = !filter.empty() && mosquitto_sub_topic_check(filter.c_str()) == MOSQ_ERR_SUCCESS;
    if (!t || !broker_takes) continue;
    for (const std::string& topic : all(topic_parts, 4)) {
      if (topic.empty() || mosquitto_pub_topic_check(topic.c_str()) != MOSQ_ERR_SUCCESS) continue;
      bool delivered = false;
      ASSERT_EQ(mosquitto_topic_matches_sub(filter.c_str(), topic.c_str(), &delivered), MOSQ_ERR_SUCCESS);
      EXPECT_EQ(match(*t, topic).ok, delivered) << tmpl << " <- " << topic;
      ++compared;
    }
  }
  EXPECT_GT(compared, 100'000u);
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
