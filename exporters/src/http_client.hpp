#pragma once
// HttpClient: one keep-alive HTTP/1.1 connection (Boost.Beast) with a
// deadline on every request. Used by one thread at a time; no exceptions
// escape (errors come back as Result; an HTTP status is a value).

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ringpipe/common/result.hpp"

namespace ringpipe::exporters {

struct HttpUrl {
  std::string host;
  std::string port;    // "80" when absent
  std::string target;  // path and query, "/" when absent
};
// Accepts http://host[:port][/path]; https is refused with a clear error.
[[nodiscard]] Result<HttpUrl> parse_http_url(const std::string& url);

struct HttpResponse {
  int status = 0;
  std::string body;
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

class HttpClient {
 public:
  explicit HttpClient(HttpUrl url);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request on the kept-alive connection (reconnecting when the
  // server closed it) and reads the answer, all within `timeout`.
  [[nodiscard]] Result<HttpResponse> request(const std::string& method, const std::string& target,
                                             const HttpHeaders& headers, const std::string& body,
                                             std::chrono::milliseconds timeout) noexcept;
  [[nodiscard]] const HttpUrl& url() const noexcept { return url_; }
  void close() noexcept;

 private:
  struct Impl;
  HttpUrl url_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringpipe::exporters
