#pragma once
// MQTT 3.1.1 topic rules (sections 1.5.3 and 4.7), written once for the two
// parts that need them: config validates a source's `topics` and
// `topic_template` with them, and the ingest MQTT source checks its
// subscriptions and matches every message's topic with them, so a file that
// validates is a file the source can run. Header-only pure functions on
// string views: thread-safe; the checks and matchers never allocate, log or
// throw (topic_template_problem allocates its message).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringpipe::config {

// An MQTT string carries a 16-bit length (1.5.3).
inline constexpr std::size_t kMaxTopicBytes = 65535;
// Labels one topic_template may capture besides +name: a sample's tag limit.
inline constexpr std::size_t kMaxTopicTemplateLabels = 64;

// Text an MQTT client may send as a topic (1.5.3): well-formed UTF-8 (no
// overlong forms, no surrogates), no U+0000 (a MUST), and none of the control
// characters U+0001..U+001F, U+007F..U+009F or the non-characters, which a
// broker may answer by closing the connection (libmosquitto refuses them).
[[nodiscard]] constexpr bool valid_topic_text(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<std::uint8_t>(s[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (b < 0x80) {
      len = 1;
      cp = b;
    } else if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
      cp = b & 0x1Fu;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      cp = b & 0x0Fu;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      cp = b & 0x07u;
    } else {
      return false;  // a continuation byte first, 0xC0/0xC1 (overlong) or past U+10FFFF
    }
    if (s.size() - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto c = static_cast<std::uint8_t>(s[i + k]);
      if ((c & 0xC0u) != 0x80u) return false;
      cp = (cp << 6) | (c & 0x3Fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return false;  // overlong
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;                                               // surrogates
    if (cp <= 0x1F || (cp >= 0x7F && cp <= 0x9F)) return false;                     // U+0000 and the control characters
    if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFEu) == 0xFFFEu) return false;  // non-characters
    i += len;
  }
  return true;
}

// Calls f(level) for each '/'-separated level of a topic, filter or
// template, in order: "a//b" has three levels, "/a" and "a/" two, "" one
// (empty). Stops at the first f that returns false; returns whether none did.
template <class F>
constexpr bool for_each_topic_level(std::string_view topic, F&& f) noexcept(noexcept(f(std::string_view()))) {
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = topic.find('/', start);
    if (!f(topic.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start))) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

// A subscription's topic filter (4.7.1): 1 to kMaxTopicBytes bytes of
// valid_topic_text; '+' and '#' only as whole levels, '#' only as the last.
[[nodiscard]] constexpr bool valid_topic_filter(std::string_view filter) noexcept {
  if (filter.empty() || filter.size() > kMaxTopicBytes || !valid_topic_text(filter)) return false;
  bool after_rest = false;
  return for_each_topic_level(filter, [&](std::string_view level) noexcept {
    if (after_rest) return false;
    after_rest = level == "#";
    return level == "+" || level == "#" || level.find_first_of("+#") == std::string_view::npos;
  });
}

// Why `t` is not a usable topic_template, or "" when it is. A template's
// levels are literals, "+label" (the level becomes that label; "+name"
// becomes the metric name), "+" (any level, not kept) or a last "#" (any
// rest, not kept), with no label twice and at most kMaxTopicTemplateLabels
// labels besides name. "" (no template) is usable.
[[nodiscard]] inline std::string topic_template_problem(std::string_view t) {
  if (t.empty()) return {};
  std::string problem;
  bool after_rest = false;
  std::size_t labels = 0;
  for_each_topic_level(t, [&](std::string_view level) {
    if (after_rest) {
      problem = "'#' before the last level";
    } else if (level == "#") {
      after_rest = true;
    } else if (level.size() > 1 && level[0] == '+') {
      const std::string_view key = level.substr(1);
      if (key.find_first_of("+#") != std::string_view::npos) {
        problem = "'+' or '#' inside a label name";
      } else if (!for_each_topic_level(t.substr(0, static_cast<std::size_t>(level.data() - t.data())),
                                       [&](std::string_view earlier) noexcept { return earlier != level; })) {
        problem = "label \"" + std::string(key) + "\" twice";
      } else if (key != "name" && ++labels > kMaxTopicTemplateLabels) {
        problem = "more than " + std::to_string(kMaxTopicTemplateLabels) + " labels";
      }
    } else if (level != "+" && level.find_first_of("+#") != std::string_view::npos) {
      problem = "'+' or '#' inside a level";
    }
    return problem.empty();
  });
  return problem;
}

// Whether a topic_template has a "+name" level (the metric name comes from the topic).
[[nodiscard]] constexpr bool topic_template_captures_name(std::string_view t) noexcept {
  return !for_each_topic_level(t, [](std::string_view level) noexcept { return level != "+name"; });
}

// Matches a topic name against a topic filter or a topic_template, level by
// level as a broker does (4.7): a literal level must equal the topic's; a
// level starting with '+' takes any one level, and capture(filter_level,
// topic_level) is called with both; "#" takes the rest, none included ("a/#"
// matches "a"). A filter whose first level is a wildcard does not match a
// topic starting with '$' (4.7.2): "$SYS/..." is reached only by naming it.
template <class Capture>
constexpr bool match_topic(std::string_view filter, std::string_view topic,
                           Capture&& capture) noexcept(noexcept(capture(std::string_view(), std::string_view()))) {
  if (!filter.empty() && (filter.front() == '+' || filter.front() == '#') && !topic.empty() && topic.front() == '$')
    return false;
  std::size_t f = 0;
  std::size_t t = 0;
  for (;;) {
    const std::size_t f_end = filter.find('/', f);
    const std::string_view level =
        filter.substr(f, f_end == std::string_view::npos ? std::string_view::npos : f_end - f);
    if (level == "#") return true;
    const std::size_t t_end = topic.find('/', t);
    const std::string_view got = topic.substr(t, t_end == std::string_view::npos ? std::string_view::npos : t_end - t);
    if (!level.empty() && level.front() == '+') {
      capture(level, got);
    } else if (level != got) {
      return false;
    }
    if (t_end == std::string_view::npos) {
      // The topic ends here: so must the filter, or go on with only a "#".
      return f_end == std::string_view::npos || filter.substr(f_end + 1) == "#";
    }
    if (f_end == std::string_view::npos) return false;  // the topic has more levels
    f = f_end + 1;
    t = t_end + 1;
  }
}

// match_topic without captures: whether a subscription to `filter` receives `topic`.
[[nodiscard]] constexpr bool topic_matches(std::string_view filter, std::string_view topic) noexcept {
  return match_topic(filter, topic, [](std::string_view, std::string_view) noexcept {});
}

}  // namespace ringpipe::config
