#pragma once
// PrometheusExporter: serves the current state of every series in a metric
// ring (metric/FORMAT.md) on an HTTP /metrics endpoint, plus ringpipe's
// own counters read from shared memory. A reader thread applies the ring's
// records to a sharded state; a scrape copies one state shard at a time under
// that shard's lock, so scrapes never stall the reader for long.
// create() binds the port and attaches the durable reader; start()/stop()
// drive it from one controlling thread; port(), ready() and stats() are safe
// from any thread. Failures come back as Result, never thrown.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ringpipe/common/result.hpp"
#include "ringpipe/relabel/relabel.hpp"

namespace ringpipe::exporters {

// PEM files for HTTPS on the pull endpoint (boost::asio::ssl over OpenSSL).
struct TlsFiles {
  std::string cert_file;    // certificate (chain); may also hold the key
  std::string key_file;     // private key; "" = in cert_file
  std::string ca_file;      // client CAs: set = clients must present a certificate (mTLS)
  std::string min_version;  // "TLS10".."TLS13"; "" = OpenSSL's default
  std::string max_version;  // "TLS10".."TLS13"; "" = OpenSSL's default (TLS 1.3)
  // TLS 1.2-and-older suites by OpenSSL name (ECDHE-RSA-AES128-GCM-SHA256), in
  // the server's order; empty = OpenSSL's default list. TLS 1.3's are fixed.
  std::vector<std::string> cipher_suites;
  bool prefer_server_cipher_suites = true;  // the server's order picks the suite, else the client's
};

struct BasicAuthCredentials {
  std::string username;
  std::string password;  // plain text, or a bcrypt hash when `bcrypt`
  bool bcrypt = false;   // checked with libxcrypt's crypt_rn (pull endpoint only)
};

struct PrometheusExporterOptions {
  std::string input;                       // metric ring path
  std::string reader_name = "prometheus";  // durable reader on `input`
  bool gating = true;                      // producers of `input` wait for it when a lane is full
  std::string listen = "127.0.0.1:9102";   // host:port, [v6]:port, :port (both families); port 0 = any free port
  std::string path = "/metrics";
  // Rings whose lanes and readers are described as ringpipe_ring_* metrics
  // ("" entries ignored). The input ring is always described.
  std::vector<std::string> describe_rings;
  // metric_relabel_configs: applied to every series before it is served.
  relabel::Rules relabel;
  std::optional<TlsFiles> tls;
  std::vector<BasicAuthCredentials> basic_auth_users;  // empty = no auth (health paths never need it)
  // HTTP connections open at once, idle ones included. More wait in the
  // kernel's listen backlog until one closes.
  std::size_t max_connections = 1024;
  // A connection must deliver its whole request header within this long, or
  // it is closed (counted as an incomplete request).
  std::chrono::milliseconds header_timeout{5000};
  bool request_resync = true;  // create `<input>.resync` at start
  // /-/ready answers 200 once every shard of the processor sent a complete
  // snapshot since start, or after this long without one (idle pipeline).
  std::chrono::milliseconds ready_timeout{3000};
  // Every component's stats segment (`*.stats` directly in this directory,
  // normally `<run_dir>/<pipeline>/`) is served as ringpipe_<name> with a
  // `component` label; "" = none.
  std::string stats_dir;
  // This exporter's own stats segment (scrapes, scrape seconds, records,
  // conflicts, series) as component `component`, kind "exporter"; "" = none.
  std::string stats_path;
  std::string component = "prometheus";
  // A record that was being applied when the exporter died this many times in
  // a row is skipped and counted (exporter_quarantined_records_total); 0:
  // never skip. The journal is `<input>.<reader_name>.crash`.
  std::uint32_t quarantine_after_crashes = 3;
  // A series a relay processor's records keep up (they carry no expiry) leaves
  // the page once none has updated it for this long; 0: never, as before.
  std::chrono::milliseconds relay_ttl{0};
  // Build the page through prometheus-cpp's object model (a MetricFamily and
  // ClientMetric per series, then its TextSerializer) instead of writing the
  // pipeline's series straight from the state: the earlier path, slower and
  // larger, kept as the baseline of exporters_bench and of the tests that
  // check both write the same page.
  bool render_with_prometheus_cpp = false;
};

// Counters of one exporter (monotonic except the gauges series/families).
struct PrometheusExporterStats {
  std::uint64_t records = 0;
  std::uint64_t entries = 0;
  std::uint64_t decode_errors = 0;    // malformed records or entries (skipped)
  std::uint64_t conflicts = 0;        // entries dropped for a type/name conflict
  std::uint64_t relabel_dropped = 0;  // series entries metric_relabel_configs dropped
  std::uint64_t stale_records = 0;    // from a processor instance already replaced
  std::uint64_t instance_changes = 0;
  std::uint64_t snapshots = 0;                  // complete shard snapshots applied
  std::uint64_t scrapes = 0;                    // /metrics requests answered with a page
  std::uint64_t renders = 0;                    // pages rendered (concurrent scrapes share one)
  std::uint64_t http_connections_open = 0;      // gauge: connections a worker holds
  std::uint64_t http_connections = 0;           // connections taken by a worker
  std::uint64_t http_incomplete_requests = 0;   // closed before a whole header came (idle, slow, timed out)
  std::uint64_t http_connections_at_limit = 0;  // connections that took the last free worker
  std::uint64_t series = 0;
  std::uint64_t families = 0;
};

class PrometheusExporter {
 public:
  // Opens the ring, attaches the reader and starts the HTTP server; errors read
  // "prometheus exporter: <what>: cause".
  [[nodiscard]] static Result<std::unique_ptr<PrometheusExporter>> create(PrometheusExporterOptions options);
  ~PrometheusExporter();
  PrometheusExporter(const PrometheusExporter&) = delete;
  PrometheusExporter& operator=(const PrometheusExporter&) = delete;

  // Starts the reader thread (requests a resync first). Idempotent.
  [[nodiscard]] Status start();
  // Joins the reader thread; the endpoint keeps serving the last state until
  // destruction. Idempotent.
  void stop() noexcept;

  [[nodiscard]] std::uint16_t port() const noexcept;
  [[nodiscard]] bool ready() const noexcept;
  [[nodiscard]] PrometheusExporterStats stats() const noexcept;

  struct Impl;

 private:
  explicit PrometheusExporter(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringpipe::exporters
