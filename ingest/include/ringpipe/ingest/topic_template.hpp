#pragma once
// TopicTemplate: maps MQTT topic levels to a metric name and labels.
//   sensors/+site/+device/+name   sensors/lab/s1/temperature
//     -> labels site=lab, device=s1; the level named "name" is the metric name
// A level is a literal (must equal the topic's level, empty ones included),
// "+label" (captures the level as a label; "+name" captures the metric name),
// "+" (any level, not kept) or "#" last (any rest, not kept); levels match
// as in an MQTT subscription, and the rules are config's
// (ringpipe/config/mqtt_topic.hpp), so what `ringpipe validate` accepts is
// what parse() accepts. An empty template matches every topic and captures
// nothing. Built once by parse(); match() never allocates, logs or throws.
// Immutable after parse: shareable between threads.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "ringpipe/common/result.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace ringpipe::ingest {

class TopicTemplate {
 public:
  TopicTemplate() = default;
  // Fails on "+" or "#" inside a level or a label name, "#" not last, a label
  // captured twice, or more labels than a sample may carry.
  [[nodiscard]] static Result<TopicTemplate> parse(std::string_view text);

  struct Match {
    std::string_view name;   // the "+name" level; empty when the template has none
    std::size_t labels = 0;  // written to the front of `labels`
  };
  // False when the topic does not fit the template (as MQTT, a template that
  // starts with a wildcard does not fit a "$..." topic). Label values are
  // views into `topic`, keys into the template; at most labels.size() are
  // written (the template was checked against kMaxTags at parse).
  [[nodiscard]] bool match(std::string_view topic, std::span<sample::Tag> labels, Match& out) const noexcept;

  [[nodiscard]] bool empty() const noexcept { return text_.empty(); }
  [[nodiscard]] bool captures_name() const noexcept { return captures_name_; }

 private:
  std::string text_;  // as written, checked by parse()
  bool captures_name_ = false;
};

}  // namespace ringpipe::ingest
