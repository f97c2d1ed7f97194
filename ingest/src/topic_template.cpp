#include "ringpipe/ingest/topic_template.hpp"

#include <algorithm>

#include "ringpipe/ingest/parse.hpp"

namespace ringpipe::ingest {

Result<TopicTemplate> TopicTemplate::parse(std::string_view text) {
  TopicTemplate t;
  if (text.empty()) return t;
  const std::string what = "topic_template \"" + std::string(text) + "\": ";
  std::size_t start = 0;
  std::size_t captures = 0;
  for (;;) {
    const std::size_t slash = text.find('/', start);
    const std::string_view level = text.substr(start, slash == std::string_view::npos ? text.npos : slash - start);
    const bool last = slash == std::string_view::npos;
    if (t.rest_) return invalid(what + "'#' must be the last level");
    if (level == "#") {
      t.rest_ = true;
    } else if (level == "+") {
      t.levels_.push_back(Level{Kind::kAny, {}});
    } else if (!level.empty() && level[0] == '+') {
      const std::string_view key = level.substr(1);
      if (key.find_first_of("+#") != std::string_view::npos) return invalid(what + "'+' or '#' inside a label name");
      for (const Level& l : t.levels_) {
        if (l.kind == Kind::kCapture && l.text == key) return invalid(what + "label \"" + std::string(key) + "\" twice");
      }
      if (key == "name") {
        t.name_level_ = static_cast<int>(t.levels_.size());
      } else if (++captures > kMaxTags) {
        return invalid(what + "more than " + std::to_string(kMaxTags) + " labels");
      }
      t.levels_.push_back(Level{Kind::kCapture, std::string(key)});
    } else if (level.find_first_of("+#") != std::string_view::npos) {
      return invalid(what + "'+' and '#' must be whole levels");
    } else {
      t.levels_.push_back(Level{Kind::kLiteral, std::string(level)});
    }
    if (last) break;
    start = slash + 1;
  }
  return t;
}

bool TopicTemplate::match(std::string_view topic, std::span<sample::Tag> labels, Match& out) const noexcept {
  out = Match{};
  if (empty()) return true;
  std::size_t start = 0;
  bool done = false;
  for (std::size_t i = 0; i < levels_.size(); ++i) {
    if (done) return false;  // the topic has fewer levels
    const std::size_t slash = topic.find('/', start);
    done = slash == std::string_view::npos;
    const std::string_view level = topic.substr(start, done ? topic.npos : slash - start);
    start = done ? topic.size() : slash + 1;
    const Level& l = levels_[i];
    switch (l.kind) {
      case Kind::kLiteral:
        if (level != l.text) return false;
        break;
      case Kind::kAny:
        break;
      case Kind::kCapture:
        if (static_cast<int>(i) == name_level_) {
          out.name = level;
        } else if (out.labels < labels.size()) {
          labels[out.labels++] = sample::Tag{l.text, level};
        }
        break;
    }
  }
  // Levels left over fit only a trailing '#' ("a/#" also matches "a", as in MQTT).
  return done || rest_;
}

}  // namespace ringpipe::ingest
