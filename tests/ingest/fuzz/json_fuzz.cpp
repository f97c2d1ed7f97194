// libFuzzer target for JsonParser (also built as a corpus replayer).
#include "fuzz_check.hpp"
#include "ringpipe/ingest/json_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringpipe::ingest;
  static JsonParser* parsers[16] = {};
  const unsigned key = size > 0 ? data[0] & 15 : 0;
  if (parsers[key] == nullptr) {
    JsonOptions o;
    if (key & 1) o.name = "fixed";
    if (key & 2) o.timestamp_field = "ts";
    o.timestamp_precision = static_cast<Precision>((key >> 2) & 3);
    if (key & 4) o.max_labels = 2;
    if (key & 8) {
      o.max_line_bytes = 128;
      o.kind = ringpipe::sample::Kind::kCounter;
    }
    parsers[key] = new JsonParser(o);
  }
  fuzz::check(data, size,
              [&](std::string_view p, SampleOutput& out, ParseCounters& c) { parsers[key]->parse_packet(p, out, c); });
  return 0;
}
