#pragma once
// HttpEndpoint: the Prometheus exporter's HTTP server (Boost.Beast over
// Boost.Asio, IPv4 and IPv6). GET <path> answers the page a PageSource
// collects, rendered once for the scrapes that arrive meanwhile and
// gzip-compressed for clients that accept it, behind optional basic auth;
// /-/healthy and /-/ready answer probes without auth. It bounds connections
// (open at once, header timeout), counts them and the requests it answers,
// and describes those counts as self-metrics. TLS is boost::asio::ssl over
// OpenSSL (tls_server.hpp).
// Construct, then listen() once from the controlling thread; describe(),
// counters() and pages_served() are safe from any thread. The destructor
// stops the server and waits for every request in progress. Failures come
// back as Status/Result, never thrown.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include <prometheus/collectable.h>

#include "ringpipe/common/result.hpp"
#include "ringpipe/exporters/prometheus_exporter.hpp"
#include "self_metrics.hpp"

namespace ringpipe::exporters {

// What the endpoint serves: render_page() writes one page, by default
// prometheus-cpp's text of Collect()'s families (a throw answers the scrape
// 503). render_page() runs on the endpoint's render thread; the other
// members on its I/O threads, several at once.
class PageSource : public prometheus::Collectable {
 public:
  // One page in text format 0.0.4.
  [[nodiscard]] virtual std::string render_page();
  // One page in the delimited protobuf format (protobuf_writer.hpp), for a
  // scraper that prefers it: by default Collect()'s families.
  [[nodiscard]] virtual std::string render_protobuf_page();
  // What /-/ready answers.
  [[nodiscard]] virtual bool ready() const noexcept = 0;
  // A page was written whole to a client.
  virtual void page_served() noexcept = 0;
  // Answering GET <path> failed with an exception (the client got what was written so far).
  virtual void serve_failed() noexcept = 0;
};

// Connection accounting: a connection counts from accept to close; one
// closed before it brought a whole request header is incomplete.
struct HttpCounters {
  std::atomic<std::uint64_t> open{0};
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::uint64_t> incomplete{0};
  std::atomic<std::uint64_t> at_limit{0};
  std::uint64_t limit = 0;  // connections open at once, set before the server starts
};

// `listen` ("host:port", "[v6]:port" or ":port") as host and port: the host
// without brackets, "" for every address of both families. Errors read
// "listen: <listen>: ...".
[[nodiscard]] Result<std::pair<std::string, std::string>> split_listen(const std::string& listen);

class HttpEndpoint {
 public:
  // Serves `options.path` (with `basic_auth_users`, `tls`, `max_connections`,
  // `header_timeout`) from `source`, which must outlive the endpoint.
  HttpEndpoint(const PrometheusExporterOptions& options, PageSource& source);
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // Starts the server on `host`:`port` (from split_listen), TLS when
  // `options.tls` is set. An empty host listens on one IPv6 socket that takes
  // IPv4 too, or on 0.0.0.0 where the host has no IPv6; "0.0.0.0" is IPv4
  // only. Errors read "prometheus exporter: ...", a taken port
  // "prometheus exporter: listen HOST:PORT: bind: Address already in use".
  [[nodiscard]] Status listen(const std::string& host, const std::string& port);

  // Stops serving and joins every thread, the render thread included (a
  // render in progress finishes first); the endpoint stays readable. Also
  // done by the destructor.
  void stop() noexcept;

  [[nodiscard]] std::uint16_t port() const noexcept;
  [[nodiscard]] const HttpCounters& counters() const noexcept;
  [[nodiscard]] std::uint64_t pages_served() const noexcept;  // /metrics answered whole
  // Appends the ringpipe_exporter_http_* families.
  void describe(FamilyBuilder& out) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringpipe::exporters
