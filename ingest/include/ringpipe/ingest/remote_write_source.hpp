#pragma once
// RemoteWriteSource: the Prometheus remote_write 1.0 receiver. An HTTP/1.1
// server (Boost.Beast on the ingest accept loop: connection limit, idle
// timeout, keep-alive) takes POSTs of snappy-compressed prompb WriteRequests
// on one path and writes every valid series' samples as gauge sets, with
// their timestamps, through one BatchTarget: one ring claim per request (a
// request larger than one claim continues in further records). Answers follow
// the protocol: 204 written; 400 undecodable or some series invalid (the valid
// ones are written); 404 other path; 405 not POST; 413 body over the limit;
// 415 wrong Content-Encoding/Content-Type; 503 the ring refused the write, so
// the sender retries. Self-metrics are IngestStats (connections under tcp)
// plus RemoteWriteStats, mirrored into a stats segment like IngestServer's.
// create() binds and fails with a Result; start()/stop() never throw; stop()
// may be called from any thread but a signal handler.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "ringpipe/common/result.hpp"
#include "ringpipe/ingest/batch_target.hpp"
#include "ringpipe/ingest/ingest_server.hpp"
#include "ringpipe/stats/stats_segment.hpp"

namespace ringpipe::ingest {

struct RemoteWriteConfig {
  std::string name = "remote_write";  // in log lines
  std::uint32_t source_id = 0;
  relabel::Rules relabel;  // applied to every sample before the ring (IngestConfig::relabel)
  std::string address = "127.0.0.1";
  std::uint16_t port = 9201;  // 0: any free port (see RemoteWriteSource::port)
  std::string path = "/api/v1/write";
  std::size_t max_body_bytes = 10u << 20;  // compressed; larger: 413. Uncompressed at most 8 times this.
  std::uint32_t max_labels = 64;           // per series, __name__ not counted; 1..kMaxTags
  // Per request, decoded objects: over any of them the request is answered
  // 413 (the sender does not retry it) and nothing of it is written.
  std::uint64_t max_series_per_request = 100'000;
  std::uint64_t max_labels_per_request = 2'000'000;  // Label fields, all series together
  std::uint64_t max_samples_per_request = 1'000'000;
  // Request bodies being read at once may declare (Content-Length; a chunked
  // one counts as max_body_bytes) at most this many bytes together; a request
  // over it is answered 503 with Retry-After before its body is read
  // (RemoteWriteStats::body_refusals). One body is always admitted.
  std::size_t max_inflight_body_bytes = 64u << 20;
  std::uint32_t max_connections = 1024;
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};  // also bounds one request's read and write
  std::chrono::milliseconds error_log_interval{std::chrono::seconds(10)};
  std::shared_ptr<stats::StatsSegment> stats_segment;  // as IngestConfig
  std::string stats_path;
  std::chrono::milliseconds stats_interval{250};
};

// The answers a receiver gives, as indexes of RemoteWriteStats::responses.
enum class RemoteWriteAnswer : std::uint8_t { k204, k400, k404, k405, k413, k415, k503, kCount };
inline constexpr std::size_t kRemoteWriteAnswerCount = static_cast<std::size_t>(RemoteWriteAnswer::kCount);
[[nodiscard]] std::string_view remote_write_answer_code(RemoteWriteAnswer a) noexcept;  // "204", ...

// remote_write counters beside IngestStats; relaxed atomics, readable at any time.
struct RemoteWriteStats {
  std::atomic<std::uint64_t> requests{0};  // complete requests read (bodies handled)
  std::atomic<std::uint64_t> bytes{0};     // request body bytes read
  // Requests refused with 503 before their body was read because the bodies
  // already being read hold RemoteWriteConfig::max_inflight_body_bytes.
  std::atomic<std::uint64_t> body_refusals{0};
  std::array<std::atomic<std::uint64_t>, kRemoteWriteAnswerCount> responses{};

  [[nodiscard]] std::uint64_t answered(RemoteWriteAnswer a) const noexcept {
    return responses[static_cast<std::size_t>(a)].load(std::memory_order_relaxed);
  }
};

class RemoteWriteSource {
 public:
  // Binds the listener; fails with "remote_write <name>: listen: Address already in use".
  [[nodiscard]] static Result<std::unique_ptr<RemoteWriteSource>> create(const RemoteWriteConfig& config,
                                                                         const TargetFactory& targets);
  ~RemoteWriteSource();
  RemoteWriteSource(const RemoteWriteSource&) = delete;
  RemoteWriteSource& operator=(const RemoteWriteSource&) = delete;

  // Starts the server thread and returns.
  Status start();
  // Closes the listener and every connection and joins. Idempotent.
  void stop() noexcept;

  [[nodiscard]] const IngestStats& stats() const noexcept;
  [[nodiscard]] const RemoteWriteStats& remote_write_stats() const noexcept;
  [[nodiscard]] std::uint16_t port() const noexcept;  // the bound port (useful with port 0)

  struct Impl;

 private:
  explicit RemoteWriteSource(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringpipe::ingest
