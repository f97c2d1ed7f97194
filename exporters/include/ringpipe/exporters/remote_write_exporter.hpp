#pragma once
// RemoteWriteExporter: pushes every series entry of a metric ring to a
// Prometheus remote_write 1.0 endpoint (protobuf + snappy over HTTP/1.1
// keep-alive). At-least-once: a ring record is handed over by a poll of one
// record, and the callback returns — letting the reader publish its cursor —
// only after every request built from it was answered 2xx (or dropped as
// unsendable, counted). A crash or an outage therefore loses nothing while the
// ring holds the data. By default the reader does not gate (`gating`):
// producers never wait for it, so during a long outage they overwrite what it
// has not sent; it then resumes at the oldest intact record and counts the
// records it lost (lost_records). Samples are spread over `max_in_flight` connections by
// series id, so requests run in parallel while each series stays in order.
// create() connects nothing yet; start()/stop() drive it from one controlling
// thread; stats() is safe from any thread.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ringpipe/common/result.hpp"
#include "ringpipe/exporters/prometheus_exporter.hpp"

namespace ringpipe::exporters {

// Client TLS for an https:// url: the server's certificate is checked against
// ca_file ("" = the system's CAs) and the URL's host unless
// insecure_skip_verify; cert_file/key_file = a client certificate (mTLS).
struct RemoteWriteTls {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool insecure_skip_verify = false;
};

struct RemoteWriteOptions {
  std::string input;                         // metric ring path
  std::string reader_name = "remote_write";  // durable reader on `input`
  // Whether producers of `input` wait for this reader when a lane is full.
  // false: never, so a dead endpoint cannot stall the ring's producer and its
  // other readers; the lane is the backlog, and records producers overwrite
  // before they are sent are skipped and counted in lost_records.
  bool gating = false;
  // write_relabel_configs: applied to every series before it is sent.
  relabel::Rules relabel;
  std::string url;                    // http(s)://host:port/api/v1/write
  std::optional<RemoteWriteTls> tls;  // https only; none = system CAs, no client certificate
  std::size_t batch_size = 2000;      // samples per request at most
  std::size_t max_in_flight = 4;      // parallel connections (series are sharded over them)
  // Each family's TYPE, HELP and UNIT (MetricMetadata) go with its samples at
  // most this often per connection, as Prometheus' metadata_config.send_interval;
  // 0: in every request that carries its samples.
  std::chrono::milliseconds metadata_interval{60'000};
  std::chrono::milliseconds timeout{30'000};  // per request
  std::chrono::milliseconds retry_min_backoff{30};
  std::chrono::milliseconds retry_max_backoff{5000};
  std::vector<std::pair<std::string, std::string>> headers;  // extra request headers
  std::optional<BasicAuthCredentials> basic_auth;
  std::string bearer_token;  // exclusive with basic_auth
  std::string user_agent = "ringpipe/0.1.0";
  // stop() waits this long for unacknowledged requests; what is still
  // unacknowledged then is counted in abandoned_samples and its record is
  // left unread (the cursor stays before it), so the next start sends it again.
  std::chrono::milliseconds stop_timeout{3000};  // under the supervisor's 5 s before SIGKILL
  // This exporter's stats segment (remote_write_* metrics) as component
  // `component`, kind "exporter"; "" = none.
  std::string stats_path;
  std::string component = "remote_write";
};

struct RemoteWriteStats {
  std::uint64_t records = 0;           // ring records fully handled
  std::uint64_t samples_sent = 0;      // acknowledged with 2xx
  std::uint64_t requests = 0;          // acknowledged requests
  std::uint64_t bytes_sent = 0;        // compressed bytes of acknowledged requests
  std::uint64_t retries = 0;           // requests sent again (5xx, 429, timeouts, connection errors)
  std::uint64_t dropped_requests = 0;  // refused with another 4xx: never retried
  std::uint64_t dropped_samples = 0;
  std::uint64_t abandoned_samples = 0;  // unacknowledged when stop() gave up (left in the ring)
  std::uint64_t decode_errors = 0;
  std::uint64_t relabel_dropped = 0;  // series entries write_relabel_configs dropped
  std::uint64_t lost_records = 0;     // overwritten in the ring before they were sent (non-gating reader)
  int last_status = 0;                // last HTTP status seen (0 = no answer)
};

class RemoteWriteExporter {
 public:
  // Opens the ring and attaches the reader; errors read "remote_write exporter: <what>: cause".
  [[nodiscard]] static Result<std::unique_ptr<RemoteWriteExporter>> create(RemoteWriteOptions options);
  ~RemoteWriteExporter();
  RemoteWriteExporter(const RemoteWriteExporter&) = delete;
  RemoteWriteExporter& operator=(const RemoteWriteExporter&) = delete;

  [[nodiscard]] Status start();
  void stop() noexcept;  // idempotent; waits at most about stop_timeout
  [[nodiscard]] RemoteWriteStats stats() const noexcept;

  struct Impl;

 private:
  explicit RemoteWriteExporter(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringpipe::exporters
