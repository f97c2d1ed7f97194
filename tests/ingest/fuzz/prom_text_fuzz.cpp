// libFuzzer target for PromTextParser (also built as a corpus replayer). The
// first byte picks the format (text or OpenMetrics), honor_labels and a small
// label limit, so every option is fuzzed.
#include "fuzz_check.hpp"
#include "ringpipe/ingest/prom_text_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringpipe::ingest;
  const std::uint8_t flags = size > 0 ? data[0] : 0;
  PromTextOptions o;
  o.target_labels = {{"instance", "127.0.0.1:9100"}, {"job", "fuzz"}};
  o.honor_labels = (flags & 2) != 0;
  o.max_labels = (flags & 4) != 0 ? 2 : kMaxTags;
  o.max_line_bytes = (flags & 8) != 0 ? 64 : 64 * 1024;
  PromTextParser parser(o);
  const PromFormat format = (flags & 1) != 0 ? PromFormat::kOpenMetrics : PromFormat::kText;
  fuzz::check(data, size,
              [&](std::string_view p, SampleOutput& out, ParseCounters& c) { parser.parse(p, format, out, c); });
  return 0;
}
