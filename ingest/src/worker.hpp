#pragma once
// Worker: the per-thread state of one transport thread — its parser, its
// BatchTarget and local counters. begin() claims once for a received batch,
// parse() adds packets, end() commits and adds the counters to IngestStats.
// The first refused line of a batch is kept (its reason, its first
// kExampleBytes and its sender) for end()'s rate-limited warning, so an
// operator can find the client that sends it.
// One Worker per thread; nothing here allocates, throws or logs per sample.

#include <sys/socket.h>

#include <array>
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
  // `from`: the packet's sender (nullptr: unknown), read only when a line is refused.
  void parse(std::string_view packet, const sockaddr* from = nullptr, socklen_t from_len = 0) noexcept;
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
  void keep_example(std::string_view packet, const sockaddr* from, socklen_t from_len) noexcept;

  static constexpr std::size_t kExampleBytes = 120;
  struct Example {
    bool kept = false;
    ParseError reason{};
    std::size_t line_len = 0;  // bytes kept, at most kExampleBytes
    std::size_t full_len = 0;  // the line's length
    std::array<char, kExampleBytes> line{};
    std::array<char, 80> sender{};  // NUL-terminated
  };

  std::string name_;
  LineParser parser_;
  std::unique_ptr<BatchTarget> target_;
  IngestStats& stats_;
  RateLimiter& error_log_;
  sample::BatchWriter writer_;
  SampleOutput out_;
  relabel::Rules relabel_;  // shares the compiled rules of the config
  RelabelScratch relabel_scratch_;
  ParseCounters counters_;
  std::int64_t received_ns_ = 0;
  std::size_t bytes_hint_ = 0;
  std::uint64_t refused_claims_ = 0;
  std::uint64_t records_ = 0;
  Example example_;
};

// "127.0.0.1:40000", "[::1]:40000", "unix:/run/x.sock", "unix (unnamed)" or
// "unknown" into out (NUL-terminated, truncated to fit).
void format_sender(const sockaddr* from, socklen_t from_len, std::span<char> out) noexcept;

}  // namespace ringpipe::ingest
