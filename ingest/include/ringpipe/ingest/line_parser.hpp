#pragma once
// LineParser: one of the protocol parsers chosen at run time, so transports
// handle every protocol alike. One LineParser per thread; parse_packet never
// allocates, logs or throws.

#include <string_view>
#include <variant>

#include "ringpipe/ingest/graphite_parser.hpp"
#include "ringpipe/ingest/influx_parser.hpp"
#include "ringpipe/ingest/json_parser.hpp"
#include "ringpipe/ingest/parse.hpp"
#include "ringpipe/ingest/statsd_parser.hpp"

namespace ringpipe::ingest {

struct ParserOptions {
  Protocol protocol = Protocol::kStatsd;
  StatsdOptions statsd;
  InfluxOptions influx;
  GraphiteOptions graphite;
  JsonOptions json;
};

class LineParser {
 public:
  explicit LineParser(const ParserOptions& options);

  // Parses every '\n'-separated line of `packet`.
  void parse_packet(std::string_view packet, SampleOutput& out, ParseCounters& counters) noexcept {
    std::visit([&](auto& p) { p.parse_packet(packet, out, counters); }, parser_);
  }
  [[nodiscard]] Protocol protocol() const noexcept { return protocol_; }
  // The parser itself when it is a P, else nullptr.
  template <class P>
  [[nodiscard]] P* get_if() noexcept {
    return std::get_if<P>(&parser_);
  }

 private:
  Protocol protocol_;
  std::variant<StatsdParser, InfluxParser, GraphiteParser, JsonParser> parser_;
};

}  // namespace ringpipe::ingest
