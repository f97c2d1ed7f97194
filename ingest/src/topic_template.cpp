#include "ringpipe/ingest/topic_template.hpp"

#include "ringpipe/config/mqtt_topic.hpp"
#include "ringpipe/ingest/parse.hpp"

namespace ringpipe::ingest {

static_assert(config::kMaxTopicTemplateLabels <= kMaxTags, "every label a template captures must fit one sample");

Result<TopicTemplate> TopicTemplate::parse(std::string_view text) {
  if (auto why = config::topic_template_problem(text); !why.empty()) {
    return invalid("topic_template \"" + std::string(text) + "\": " + why);
  }
  TopicTemplate t;
  t.text_ = std::string(text);
  t.captures_name_ = config::topic_template_captures_name(text);
  return t;
}

bool TopicTemplate::match(std::string_view topic, std::span<sample::Tag> labels, Match& out) const noexcept {
  out = Match{};
  if (empty()) return true;
  return config::match_topic(text_, topic, [&](std::string_view level, std::string_view value) noexcept {
    const std::string_view key = level.substr(1);  // "+site" -> "site"; "+" keeps nothing
    if (key == "name") {
      out.name = value;
    } else if (!key.empty() && out.labels < labels.size()) {
      labels[out.labels++] = sample::Tag{key, value};
    }
  });
}

}  // namespace ringpipe::ingest
