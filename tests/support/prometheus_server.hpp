#pragma once
// Test helper: runs Debian's /usr/bin/prometheus on a free loopback port with
// a temporary storage directory (remote-write receiver on), queries its HTTP
// API, and stops it. One thread at a time.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "loopback.hpp"

namespace ringpipe::exporters::testing {

inline constexpr const char* kPrometheusBinary = "/usr/bin/prometheus";
inline constexpr const char* kPromtoolBinary = "/usr/bin/promtool";

using ringpipe::testing::free_tcp_port;

// GET http://127.0.0.1:port/target -> (status, body); status 0 when no answer.
std::pair<int, std::string> http_get(std::uint16_t port, const std::string& target,
                                     const std::string& authorization = "",
                                     std::chrono::milliseconds timeout = std::chrono::seconds(5));

// GET http://host:port/target -> (status, body), host an address such as
// "::1" (no brackets); status 0 when no answer.
std::pair<int, std::string> http_get_at(const std::string& host, std::uint16_t port, const std::string& target,
                                        const std::string& authorization = "",
                                        std::chrono::milliseconds timeout = std::chrono::seconds(5));

// One answer read off the wire as it came: status, headers (names as sent)
// and the body undecoded (still gzip when Content-Encoding says so).
struct RawHttpResponse {
  int status = 0;  // 0: no answer (error says why)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string error;
  // The first header of that name (case-insensitive); nullopt when absent.
  [[nodiscard]] std::optional<std::string> header(std::string_view name) const;
};

// GET http://127.0.0.1:port/target with `headers` over a fresh connection,
// read until the server closes it (the exporter answers Connection: close), so
// whatever the server counts once a request is over is counted when this
// returns.
RawHttpResponse raw_http_get(std::uint16_t port, const std::string& target,
                             const std::vector<std::pair<std::string, std::string>>& headers = {},
                             std::chrono::milliseconds timeout = std::chrono::seconds(10));

// The value of `series` (name and labels exactly as the page writes them) in
// a text exposition; nullopt when the page has no such line.
std::optional<double> sample_value(const std::string& page, const std::string& series);

// GET https://127.0.0.1:port/target trusting `ca_file` (our HttpClient over TLS).
std::pair<int, std::string> https_get(std::uint16_t port, const std::string& target, const std::string& ca_file,
                                      const std::string& authorization = "",
                                      std::chrono::milliseconds timeout = std::chrono::seconds(5));

// A self-signed CA and a server certificate it signed for 127.0.0.1 and
// localhost, made with /usr/bin/openssl in `dir` (ca.pem, server.pem,
// server.key); false when openssl failed.
struct TestPki {
  std::string ca_cert, ca_key, cert, key;
};
[[nodiscard]] bool make_test_pki(const std::string& dir, TestPki* out);

// A self-signed certificate for `san` (e.g. "IP:127.0.0.1") and its key,
// made with /usr/bin/openssl as `dir`/cert.pem and `dir`/key.pem; false when
// openssl failed.
[[nodiscard]] bool make_self_signed_cert(const std::string& dir, const std::string& san, std::string* cert,
                                         std::string* key);

// What `openssl s_client` with `args` (e.g. "-tls1_2 -cipher X") agrees on
// with the TLS server on 127.0.0.1:port: "TLSv1.2, Cipher is
// ECDHE-RSA-AES256-GCM-SHA384", or "" when the handshake fails. s_client's
// output goes to `out`, for failure messages.
std::string tls_handshake(std::uint16_t port, const std::string& args, const std::string& out);

class PrometheusServer {
 public:
  // `dir` holds config, data and log; `scrape_port` 0 = scrape nothing.
  PrometheusServer(std::string dir, std::uint16_t scrape_port);
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  // Replaces the generated prometheus.yml (e.g. to scrape itself and
  // remote_write somewhere). Call before start().
  void set_config(const std::string& yaml);
  // Serves HTTPS only, through Prometheus' --web.config.file (tls_server_config);
  // queries and the readiness check trust `ca_file`. Call before start().
  void use_tls(const std::string& cert_file, const std::string& key_file, const std::string& ca_file);
  // Passes `flag` (e.g. "--enable-feature=native-histograms") too. Call before start().
  void add_flag(std::string flag) { flags_.push_back(std::move(flag)); }
  // Starts it (again, on the same port and data) and waits for /-/ready.
  [[nodiscard]] bool start(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  void stop();  // SIGTERM, then SIGKILL after 10 s
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  // First value of an instant query, nullopt when the result is empty or on error.
  [[nodiscard]] std::optional<double> query(const std::string& promql);
  // The same at `time_ms` (the query API's `time`, in ms since the epoch).
  [[nodiscard]] std::optional<double> query_at(const std::string& promql, std::int64_t time_ms);
  // The samples of a range-vector query (`name{...}[10m]`) of one series:
  // (timestamp in ms, value), as Prometheus stored them; nullopt when the
  // result is empty or on error.
  [[nodiscard]] std::optional<std::vector<std::pair<std::int64_t, double>>> range_samples(const std::string& promql);
  // Polls query() until it returns `want` or the timeout passes; returns the last value.
  std::optional<double> wait_for_value(const std::string& promql, double want, std::chrono::milliseconds timeout);
  [[nodiscard]] std::string log_tail() const;

 private:
  std::string dir_;
  std::uint16_t scrape_port_;
  std::uint16_t port_;
  pid_t pid_ = -1;
  std::string tls_ca_file_;  // "" = plain HTTP
  std::vector<std::string> flags_;
  std::pair<int, std::string> get(const std::string& target, std::chrono::milliseconds timeout);
};

}  // namespace ringpipe::exporters::testing
