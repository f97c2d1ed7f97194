#pragma once
// HttpClient: one keep-alive HTTP/1.1 connection (Boost.Beast), plain or TLS
// (Boost.Asio ssl over OpenSSL), with a deadline on every request and a limit
// on the response body. Shared by the remote_write exporter and the
// Prometheus scrape source. Used by one thread at a time; a TlsClientContext
// may be shared by many clients. No exceptions escape (errors come back as
// Result; an HTTP status is a value).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ringpipe/common/result.hpp"

namespace ringpipe::net {

struct HttpUrl {
  std::string host;    // without brackets for IPv6 literals
  std::string port;    // "80" (http) or "443" (https) when absent
  std::string target;  // path and query, "/" when absent
  bool https = false;
};
// Accepts http://host[:port][/path] and https://host[:port][/path].
[[nodiscard]] Result<HttpUrl> parse_http_url(const std::string& url);

// Client side TLS: the server's certificate is verified against `ca_file`
// ("" = the system's trusted CAs) and must name the URL's host, unless
// `insecure_skip_verify`. `cert_file`/`key_file` (PEM) = a client certificate.
struct TlsClientOptions {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;  // "" = in cert_file
  bool insecure_skip_verify = false;
};

// An OpenSSL client context (trusted CAs, client certificate) built once.
class TlsClientContext;
[[nodiscard]] Result<std::shared_ptr<TlsClientContext>> make_tls_client_context(const TlsClientOptions& options);

struct HttpResponse {
  int status = 0;
  std::string content_type;  // the Content-Type header, "" when absent
  std::string body;
};

// Error codes request() fails with, beside the context text, so callers can
// count failures by reason: std::errc::timed_out (the deadline passed),
// std::errc::message_size (the body is over max_body_bytes),
// std::errc::connection_refused (resolve, connect or TLS handshake failed),
// std::errc::io_error (anything else: reset, malformed response).
inline constexpr std::uint64_t kDefaultMaxBodyBytes = std::uint64_t{1} << 30;

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

class HttpClient {
 public:
  // `tls` is required for an https URL (request() fails without it) and
  // ignored for http.
  explicit HttpClient(HttpUrl url, std::shared_ptr<TlsClientContext> tls = nullptr);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request on the kept-alive connection (reconnecting, and for
  // https handshaking, when the server closed it) and reads the answer, all
  // within `timeout`; a response body over `max_body_bytes` fails the request.
  [[nodiscard]] Result<HttpResponse> request(const std::string& method, const std::string& target,
                                             const HttpHeaders& headers, const std::string& body,
                                             std::chrono::milliseconds timeout,
                                             std::uint64_t max_body_bytes = kDefaultMaxBodyBytes) noexcept;
  [[nodiscard]] const HttpUrl& url() const noexcept { return url_; }
  void close() noexcept;

 private:
  struct Impl;
  HttpUrl url_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringpipe::net
