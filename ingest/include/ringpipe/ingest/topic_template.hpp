#pragma once
// TopicTemplate: maps MQTT topic levels to a metric name and labels.
//   sensors/+site/+device/+name   sensors/lab/s1/temperature
//     -> labels site=lab, device=s1; the level named "name" is the metric name
// A level is a literal (must equal the topic's level), "+label" (captures the
// level as a label; "+name" captures the metric name), "+" (any level, not
// kept) or "#" last (any rest, not kept). An empty template matches every
// topic and captures nothing. Built once by parse(); match() never
// allocates, logs or throws. Immutable after parse: shareable between threads.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringpipe/common/result.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace ringpipe::ingest {

class TopicTemplate {
 public:
  TopicTemplate() = default;
  // Fails on "+" or "#" inside a level, "#" not last, an empty level, or a label captured twice.
  [[nodiscard]] static Result<TopicTemplate> parse(std::string_view text);

  struct Match {
    std::string_view name;  // the "+name" level; empty when the template has none
    std::size_t labels = 0;  // written to the front of `labels`
  };
  // False when the topic does not fit the template. Label values are views
  // into `topic`; at most labels.size() are written (the template was
  // checked against kMaxTags at parse).
  [[nodiscard]] bool match(std::string_view topic, std::span<sample::Tag> labels, Match& out) const noexcept;

  [[nodiscard]] bool empty() const noexcept { return levels_.empty() && !rest_; }
  [[nodiscard]] bool captures_name() const noexcept { return name_level_ >= 0; }

 private:
  enum class Kind { kLiteral, kCapture, kAny };
  struct Level {
    Kind kind;
    std::string text;  // the literal, or the label's key
  };
  std::vector<Level> levels_;
  bool rest_ = false;  // ends in "#"
  int name_level_ = -1;
};

}  // namespace ringpipe::ingest
