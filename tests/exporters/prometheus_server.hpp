#pragma once
// Test helper: runs Debian's /usr/bin/prometheus on a free loopback port with
// a temporary storage directory (remote-write receiver on), queries its HTTP
// API, and stops it. One thread at a time.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace ringpipe::exporters::testing {

inline constexpr const char* kPrometheusBinary = "/usr/bin/prometheus";
inline constexpr const char* kPromtoolBinary = "/usr/bin/promtool";

[[nodiscard]] std::uint16_t free_loopback_port();

// GET http://127.0.0.1:port/target -> (status, body); status 0 when no answer.
std::pair<int, std::string> http_get(std::uint16_t port, const std::string& target,
                                     const std::string& authorization = "",
                                     std::chrono::milliseconds timeout = std::chrono::seconds(5));

class PrometheusServer {
 public:
  // `dir` holds config, data and log; `scrape_port` 0 = scrape nothing.
  PrometheusServer(std::string dir, std::uint16_t scrape_port);
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  // Starts it (again, on the same port and data) and waits for /-/ready.
  [[nodiscard]] bool start(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  void stop();  // SIGTERM, then SIGKILL after 10 s
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  // First value of an instant query, nullopt when the result is empty or on error.
  [[nodiscard]] std::optional<double> query(const std::string& promql);
  // Polls query() until it returns `want` or the timeout passes; returns the last value.
  std::optional<double> wait_for_value(const std::string& promql, double want, std::chrono::milliseconds timeout);
  [[nodiscard]] std::string log_tail() const;

 private:
  std::string dir_;
  std::uint16_t scrape_port_;
  std::uint16_t port_;
  pid_t pid_ = -1;
};

}  // namespace ringpipe::exporters::testing
