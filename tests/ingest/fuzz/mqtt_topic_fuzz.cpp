// libFuzzer target for TopicTemplate (also built as a corpus replayer): the
// first line is a template, every further line a topic to match against it.
// Aborts if a match hands out a name or label that is not part of the topic.
#include <array>
#include <string_view>

#include "fuzz_check.hpp"
#include "ringpipe/ingest/topic_template.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringpipe::ingest;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::size_t nl = in.find('\n');
  auto t = TopicTemplate::parse(in.substr(0, nl));
  if (!t || nl == std::string_view::npos) return 0;
  in.remove_prefix(nl + 1);
  std::array<ringpipe::sample::Tag, kMaxTags> tags{};
  auto inside = [](std::string_view part, std::string_view whole) {
    return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
  };
  for (;;) {
    const std::size_t end = in.find('\n');
    const std::string_view topic = in.substr(0, end);
    TopicTemplate::Match m;
    if (t->match(topic, tags, m)) {
      RINGPIPE_FUZZ_CHECK(m.labels <= tags.size());
      RINGPIPE_FUZZ_CHECK(inside(m.name, topic));
      for (std::size_t i = 0; i < m.labels; ++i) {
        RINGPIPE_FUZZ_CHECK(inside(tags[i].value, topic));
        RINGPIPE_FUZZ_CHECK(tags[i].value.find('/') == std::string_view::npos);
      }
    }
    if (end == std::string_view::npos) break;
    in.remove_prefix(end + 1);
  }
  return 0;
}
