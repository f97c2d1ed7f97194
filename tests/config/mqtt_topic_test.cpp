// MQTT 3.1.1's topic rules (ringpipe/config/mqtt_topic.hpp), with the
// examples of the specification's section 4.7.
#include "ringpipe/config/mqtt_topic.hpp"

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace ringpipe::config {
namespace {

TEST(MqttTopic, FiltersTakeWildcardsOnlyAsWholeLevelsAndHashOnlyLast) {
  for (const char* ok : {"sport/tennis/player1/#", "sport/#", "#", "+", "+/tennis/#", "sport/+/player1", "+/+", "/+",
                         "/finance", "a//b", "a/", "$SYS/#", "caf\xC3\xA9/+"}) {
    EXPECT_TRUE(valid_topic_filter(ok)) << ok;
  }
  for (const char* bad : {"", "sport/tennis#", "sport/tennis/#/ranking", "sport+", "+x", "a/#/", "##", "a/b+/c"}) {
    EXPECT_FALSE(valid_topic_filter(bad)) << bad;
  }
}

TEST(MqttTopic, FiltersAreUtf8WithoutNulOrControlCharactersAndAtMost65535Bytes) {
  EXPECT_TRUE(valid_topic_filter(std::string(65535, 'a')));
  EXPECT_FALSE(valid_topic_filter(std::string(65536, 'a')));
  EXPECT_FALSE(valid_topic_filter(std::string("a\0b", 3)));
  for (const char* bad : {"a\x01", "a\tb", "a\x7F", "a\xC2\x80", "a\xFF", "a\xC0\x80", "a\xED\xA0\x80", "a\xEF\xBF\xBF",
                          "a\xEF\xB7\x90", "a\xF4\x90\x80\x80", "a\xE2\x82"}) {
    EXPECT_FALSE(valid_topic_text(bad)) << bad;
  }
  for (const char* ok : {"a", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xC2\xA0", "\xF4\x8F\xBF\xBD"}) {
    EXPECT_TRUE(valid_topic_text(ok)) << ok;
  }
}

TEST(MqttTopic, MatchesAsSection47Says) {
  struct Row {
    const char* filter;
    const char* topic;
    bool matches;
  };
  const Row rows[] = {
      {"sport/tennis/player1/#", "sport/tennis/player1", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
      {"sport/#", "sport", true},
      {"sport/tennis/+", "sport/tennis/player1", true},
      {"sport/tennis/+", "sport/tennis/player1/ranking", false},
      {"sport/+", "sport", false},
      {"sport/+", "sport/", true},
      {"+/+", "/finance", true},
      {"/+", "/finance", true},
      {"+", "/finance", false},
      {"a//b", "a//b", true},
      {"a/+/b", "a//b", true},
      {"#", "$SYS/broker/load", false},
      {"+/monitor/Clients", "$SYS/monitor/Clients", false},
      {"$SYS/#", "$SYS/monitor/Clients", true},
      {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
      {"a/$b/#", "a/$b/c", true},
      {"ACCOUNTS", "Accounts", false},
  };
  for (const Row& r : rows) {
    EXPECT_EQ(topic_matches(r.filter, r.topic), r.matches) << r.filter << " <- " << r.topic;
  }
}

TEST(MqttTopic, MatchTellsEveryWildcardLevelWhatItTook) {
  std::vector<std::pair<std::string, std::string>> got;
  EXPECT_TRUE(match_topic("s/+site/+/+name/#", "s/lab/x/temp/a/b",
                          [&](std::string_view level, std::string_view value) { got.emplace_back(level, value); }));
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::string>>{{"+site", "lab"}, {"+", "x"}, {"+name", "temp"}}));
}

TEST(MqttTopic, TemplatesNameTheirProblem) {
  EXPECT_EQ(topic_template_problem(""), "");
  EXPECT_EQ(topic_template_problem("sensors/+site/+device/+name"), "");
  EXPECT_EQ(topic_template_problem("a//+name/#"), "");
  EXPECT_EQ(topic_template_problem("a/#/b"), "'#' before the last level");
  EXPECT_EQ(topic_template_problem("a/+x+/c"), "'+' or '#' inside a label name");
  EXPECT_EQ(topic_template_problem("a/+x/+x"), "label \"x\" twice");
  EXPECT_EQ(topic_template_problem("+name/+name"), "label \"name\" twice");
  EXPECT_EQ(topic_template_problem("a/b+/c"), "'+' or '#' inside a level");
  std::string labels;
  for (std::size_t i = 0; i < kMaxTopicTemplateLabels; ++i) labels += "+l" + std::to_string(i) + "/";
  EXPECT_EQ(topic_template_problem(labels + "+name"), "");
  EXPECT_EQ(topic_template_problem(labels + "+one_more"), "more than 64 labels");
}

TEST(MqttTopic, OnlyALevelThatIsExactlyPlusNameCapturesTheName) {
  EXPECT_TRUE(topic_template_captures_name("+name"));
  EXPECT_TRUE(topic_template_captures_name("sensors/+name/#"));
  EXPECT_FALSE(topic_template_captures_name("sensors/+name2"));
  EXPECT_FALSE(topic_template_captures_name("+names/x"));
  EXPECT_FALSE(topic_template_captures_name("name/+"));
  EXPECT_FALSE(topic_template_captures_name(""));
}

}  // namespace
}  // namespace ringpipe::config
