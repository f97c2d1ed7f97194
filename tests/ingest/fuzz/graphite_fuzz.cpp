// libFuzzer target for GraphiteParser (also built as a corpus replayer).
#include "fuzz_check.hpp"
#include "ringpipe/ingest/graphite_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringpipe::ingest;
  GraphiteOptions o;
  o.reject_infinite = size > 0 && (data[0] & 1);
  GraphiteParser parser(o);
  fuzz::check(data, size,
              [&](std::string_view p, SampleOutput& out, ParseCounters& c) { parser.parse_packet(p, out, c); });
  return 0;
}
