// libFuzzer target for StatsdParser (also built as a corpus replayer).
#include "fuzz_check.hpp"
#include "ringpipe/ingest/statsd_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringpipe::ingest;
  StatsdOptions o;
  if (size > 0) {  // the first byte picks the options; it stays part of the packet
    o.dogstatsd_tags = data[0] & 1;
    o.influxdb_tags = data[0] & 2;
    o.librato_tags = data[0] & 4;
    o.signalfx_tags = data[0] & 8;
    o.reject_non_finite = data[0] & 16;
  }
  static StatsdParser* parsers[32] = {};
  const unsigned key = size > 0 ? data[0] & 31 : 31;
  if (parsers[key] == nullptr) parsers[key] = new StatsdParser(o);  // kept for the process: fuzzing speed
  fuzz::check(data, size,
              [&](std::string_view p, SampleOutput& out, ParseCounters& c) { parsers[key]->parse_packet(p, out, c); });
  return 0;
}
