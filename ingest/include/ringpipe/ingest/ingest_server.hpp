#pragma once
// IngestServer: the ingest component. Given a config it binds its listeners
// (UDP with recvmmsg and SO_REUSEPORT fan-out, TCP, Unix datagram and stream
// sockets), then run() parses everything received into sample batches — one
// claim per received batch — until stop(). Every thread writes through its own
// BatchTarget (ring lane). Self-metrics are plain atomic counters in
// IngestStats, readable by any thread at any time, and mirrored into a stats
// segment in shared memory (IngestConfig::stats_path) for other processes.
// create() fails with a Result; run()/stop() never throw. stop() may be
// called from any thread (not from a signal handler).

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "ringpipe/common/result.hpp"
#include "ringpipe/ingest/batch_target.hpp"
#include "ringpipe/ingest/line_parser.hpp"
#include "ringpipe/ingest/parse.hpp"
#include "ringpipe/relabel/relabel.hpp"
#include "ringpipe/stats/stats_segment.hpp"

namespace ringpipe::ingest {

struct UdpConfig {
  std::string address = "127.0.0.1";
  std::uint16_t port = 9125;                 // 0: any free port (see IngestServer::udp_port)
  std::uint32_t sockets = 1;                 // one thread each, SO_REUSEPORT when > 1
  std::uint32_t receive_buffer_bytes = 0;    // 0: kernel default; else SO_RCVBUFFORCE, falling back to SO_RCVBUF
  std::uint32_t batch_packets = 32;          // datagrams per recvmmsg
  std::uint32_t max_datagram_bytes = 65536;  // larger datagrams are truncated (counted)
};

// What each stream connection reads into (or max_line_bytes + 1 when smaller);
// its buffer grows past this only while a partial line needs it.
inline constexpr std::size_t kStreamReadChunk = std::size_t{64} << 10;

struct TcpConfig {
  std::string address = "127.0.0.1";
  std::uint16_t port = 9125;
  std::uint32_t max_connections = 1024;  // further connections are closed at once (counted)
  std::uint32_t max_line_bytes = 65536;  // longer lines are skipped (counted); the connection survives
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
  // Partial lines of all connections together, beyond kStreamReadChunk each:
  // a connection whose line would take more is closed (counted). At least one
  // line of max_line_bytes always fits.
  std::size_t max_buffered_bytes = std::size_t{64} << 20;
};

struct UnixDatagramConfig {
  std::string path;
  std::uint32_t mode = 0622;  // applied to the socket file
  std::uint32_t receive_buffer_bytes = 0;
  std::uint32_t batch_packets = 32;
  std::uint32_t max_datagram_bytes = 65536;
};

struct UnixStreamConfig {
  std::string path;
  std::uint32_t mode = 0622;
  std::uint32_t max_connections = 1024;
  std::uint32_t max_line_bytes = 65536;
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
  std::size_t max_buffered_bytes = std::size_t{64} << 20;  // as TcpConfig's
};

struct IngestConfig {
  std::string name = "ingest";  // in log lines
  std::uint32_t source_id = 0;  // written into every batch header
  ParserOptions parser;
  // Applied to every sample before it is written (empty: nothing to do, and
  // the parse path does not look further than one pointer test).
  relabel::Rules relabel;
  std::optional<UdpConfig> udp;
  std::optional<TcpConfig> tcp;
  std::optional<UnixDatagramConfig> unix_datagram;
  std::optional<UnixStreamConfig> unix_stream;
  std::chrono::milliseconds error_log_interval{std::chrono::seconds(10)};  // malformed input: one warning per interval
  // At stop, stream connections get this long to reach end of stream (clients
  // that already sent everything lose nothing); then they are closed.
  std::chrono::milliseconds stop_drain_timeout{std::chrono::seconds(2)};
  // Self-metrics in shared memory as ringpipe source_* entries: published
  // into `stats_segment` when set (the servers of one process share one),
  // else into a segment the server creates at `stats_path` (component `name`,
  // kind "source"); neither = not published. Mirrored every stats_interval
  // and once more at stop, so a stopped server's segment holds exact totals.
  std::shared_ptr<stats::StatsSegment> stats_segment;
  std::string stats_path;
  std::chrono::milliseconds stats_interval{250};
  // Sockets bound by someone else (`ringpipe run`), by key (listen_sockets.hpp):
  // when empty the server binds its own; else every listener's key must be
  // here, and the server owns these descriptors from create() on.
  std::map<std::string, int> listen_fds;
};

inline constexpr std::size_t kMaxUdpSockets = 64;

// Counters of one stream listener (TCP or Unix stream).
struct StreamStats {
  std::atomic<std::uint64_t> connections{0};           // accepted
  std::atomic<std::uint64_t> connections_open{0};      // gauge
  std::atomic<std::uint64_t> connections_rejected{0};  // over max_connections
  std::atomic<std::uint64_t> idle_closed{0};
  std::atomic<std::uint64_t> read_errors{0};
  std::atomic<std::uint64_t> accept_errors{0};  // each is followed by a backoff before the next accept
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<std::uint64_t> buffered_bytes{0};  // gauge: partial-line buffers beyond kStreamReadChunk each
  std::atomic<std::uint64_t> buffer_closed{0};   // closed: their partial line would pass max_buffered_bytes
};

// Self-metrics, written with relaxed atomics by the server's threads (once
// per received batch, not per sample) and readable by anyone at any time.
struct IngestStats {
  std::atomic<std::uint64_t> udp_packets{0};
  std::atomic<std::uint64_t> udp_bytes{0};
  std::atomic<std::uint64_t> udp_truncated{0};
  std::array<std::atomic<std::uint64_t>, kMaxUdpSockets> udp_kernel_drops{};  // SO_RXQ_OVFL, per socket
  std::atomic<std::uint64_t> unix_datagram_packets{0};
  std::atomic<std::uint64_t> unix_datagram_kernel_drops{0};
  StreamStats tcp;
  StreamStats unix_stream;

  std::atomic<std::uint64_t> lines{0};
  std::atomic<std::uint64_t> samples{0};            // parsed
  std::atomic<std::uint64_t> samples_written{0};    // in the ring
  std::atomic<std::uint64_t> samples_dropped{0};    // ring refused the claim (kFull / kTimeout)
  std::atomic<std::uint64_t> samples_too_large{0};  // larger than one batch record
  std::atomic<std::uint64_t> records_written{0};
  std::atomic<std::uint64_t> records_dropped{0};  // claims refused while samples were waiting
  std::atomic<std::uint64_t> skipped_fields{0};
  std::array<std::atomic<std::uint64_t>, kParseErrorCount> parse_errors{};
  std::atomic<std::uint64_t> relabel_dropped{0};       // by a keep/drop rule of relabel_configs
  std::atomic<std::uint64_t> relabel_invalid_name{0};  // left without a (valid) name by relabel_configs

  [[nodiscard]] std::uint64_t parse_error(ParseError e) const noexcept {
    return parse_errors[static_cast<std::size_t>(e)].load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t udp_kernel_drops_total() const noexcept;
};

class IngestServer {
 public:
  // Binds every configured listener and makes one target per thread; fails
  // with "ingest <name>: bind udp 127.0.0.1:9125: Address already in use".
  [[nodiscard]] static Result<std::unique_ptr<IngestServer>> create(const IngestConfig& config, TargetFactory targets);
  ~IngestServer();
  IngestServer(const IngestServer&) = delete;
  IngestServer& operator=(const IngestServer&) = delete;

  // Starts the threads and blocks until stop(); returns at once if already stopped.
  Status run();
  // Starts the threads and returns; stop() joins them.
  Status start();
  // Stops receiving, commits what is parsed and joins the threads. Idempotent.
  void stop() noexcept;

  [[nodiscard]] const IngestStats& stats() const noexcept;
  [[nodiscard]] std::uint16_t udp_port() const noexcept;  // bound ports (useful with port 0)
  [[nodiscard]] std::uint16_t tcp_port() const noexcept;

  struct Impl;

 private:
  explicit IngestServer(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringpipe::ingest
