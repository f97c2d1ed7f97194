// libFuzzer target for InfluxParser (also built as a corpus replayer).
#include "fuzz_check.hpp"
#include "ringpipe/ingest/influx_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringpipe::ingest;
  static InfluxParser* parsers[8] = {};
  const unsigned key = size > 0 ? data[0] & 7 : 0;
  if (parsers[key] == nullptr) {
    InfluxOptions o;
    o.precision = static_cast<Precision>(key & 3);
    o.booleans_as_numbers = key & 4;
    parsers[key] = new InfluxParser(o);
  }
  fuzz::check(data, size,
              [&](std::string_view p, SampleOutput& out, ParseCounters& c) { parsers[key]->parse_packet(p, out, c); });
  return 0;
}
