#pragma once
// Worker: the per-thread state of one transport thread — its parser, its
// BatchTarget and local counters. begin() claims once for a received batch,
// parse() adds packets, end() commits and adds the counters to IngestStats.
// One Worker per thread; nothing here allocates, throws or logs per sample.

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "ringpipe/common/log.hpp"
#include "ringpipe/ingest/batch_target.hpp"
#include "ringpipe/ingest/ingest_server.hpp"
#include "ringpipe/ingest/line_parser.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace ringpipe::ingest {

class Worker {
 public:
  Worker(const IngestConfig& config, std::unique_ptr<BatchTarget> target, IngestStats& stats, RateLimiter& error_log);

  // `bytes_hint`: what the batch will need, when known (one claim that large, see BatchTarget::claim_at_least).
  void begin(std::int64_t received_ns, std::size_t bytes_hint = 0) noexcept;
  void parse(std::string_view packet) noexcept { parser_.parse_packet(packet, out_, counters_); }
  void count(ParseError e, std::uint64_t n = 1) noexcept { counters_.errors[static_cast<std::size_t>(e)] += n; }
  void end() noexcept;
  // For sources that parse themselves (MQTT), between begin() and end().
  [[nodiscard]] SampleOutput& out() noexcept { return out_; }
  [[nodiscard]] ParseCounters& counters() noexcept { return counters_; }
  [[nodiscard]] LineParser& parser() noexcept { return parser_; }

 private:
  static bool rotate(void* self) noexcept;
  bool claim() noexcept;
  void commit() noexcept;
  void flush_counters() noexcept;

  std::string name_;
  LineParser parser_;
  std::unique_ptr<BatchTarget> target_;
  IngestStats& stats_;
  RateLimiter& error_log_;
  sample::BatchWriter writer_;
  SampleOutput out_;
  ParseCounters counters_;
  std::int64_t received_ns_ = 0;
  std::size_t bytes_hint_ = 0;
  std::uint64_t refused_claims_ = 0;
  std::uint64_t records_ = 0;
};

}  // namespace ringpipe::ingest
