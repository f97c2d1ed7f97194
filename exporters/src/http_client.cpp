#include "http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace ringpipe::exporters {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

Result<HttpUrl> parse_http_url(const std::string& url) {
  constexpr std::string_view kHttp = "http://";
  if (url.rfind("https://", 0) == 0) {
    return make_error(std::errc::protocol_not_supported, "url " + url + ": https is not supported by this build");
  }
  if (url.rfind(kHttp, 0) != 0) return invalid("url " + url + ": expected http://host[:port][/path]");
  const std::string rest = url.substr(kHttp.size());
  const auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  HttpUrl u;
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (authority.empty()) return invalid("url " + url + ": no host");
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string::npos) return invalid("url " + url + ": unclosed '['");
    u.host = authority.substr(1, close - 1);
    u.port = close + 1 < authority.size() && authority[close + 1] == ':' ? authority.substr(close + 2) : "80";
  } else {
    const auto colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    u.port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
  }
  if (u.host.empty() || u.port.empty() || u.port.find_first_not_of("0123456789") != std::string::npos) {
    return invalid("url " + url + ": bad host or port");
  }
  return u;
}

struct HttpClient::Impl {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  bool connected = false;

  // Runs the queued async operation to completion (the deadline is on the stream).
  void run() {
    ioc.restart();
    ioc.run();
  }

  beast::error_code connect(const HttpUrl& url, std::chrono::milliseconds timeout) {
    beast::error_code ec;
    asio::ip::tcp::resolver resolver(ioc);
    const auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) return ec;
    stream.expires_after(timeout);
    stream.async_connect(endpoints, [&](beast::error_code e, const asio::ip::tcp::endpoint&) { ec = e; });
    run();
    if (!ec) {
      connected = true;
      stream.socket().set_option(asio::ip::tcp::no_delay(true), ec);
      ec = {};
    }
    return ec;
  }

  void close() noexcept {
    beast::error_code ec;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    stream.socket().close(ec);
    connected = false;
    buffer.clear();
  }
};

HttpClient::HttpClient(HttpUrl url) : url_(std::move(url)), impl_(std::make_unique<Impl>()) {}
HttpClient::~HttpClient() { close(); }

void HttpClient::close() noexcept {
  if (impl_) impl_->close();
}

Result<HttpResponse> HttpClient::request(const std::string& method, const std::string& target,
                                         const HttpHeaders& headers, const std::string& body,
                                         std::chrono::milliseconds timeout) noexcept {
  try {
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, url_.host + ":" + url_.port);
    for (const auto& [k, v] : headers) req.set(k, v);
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    // A kept-alive connection the server closed fails at once: retry that once.
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool reused = impl_->connected;
      beast::error_code ec;
      if (!impl_->connected) {
        ec = impl_->connect(url_, timeout);
        if (ec) {
          impl_->close();
          return tl::unexpected(
              Error{{}, "http " + method + " " + url_.host + ":" + url_.port + target + ": connect: " + ec.message()});
        }
      }
      impl_->stream.expires_after(timeout);
      http::async_write(impl_->stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
      impl_->run();
      http::response_parser<http::string_body> parser;
      parser.body_limit(std::uint64_t{1} << 30);
      if (!ec) {
        http::async_read(impl_->stream, impl_->buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
        impl_->run();
      }
      if (ec) {
        impl_->close();
        const bool stale = reused && (ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
                                      ec == asio::error::broken_pipe || ec == asio::error::eof);
        if (stale && attempt == 0) continue;
        return tl::unexpected(Error{{}, "http " + method + " " + url_.host + ":" + url_.port + target + ": " +
                                            ec.message()});
      }
      auto res = parser.release();
      if (!res.keep_alive()) impl_->close();
      return HttpResponse{static_cast<int>(res.result_int()), std::move(res.body())};
    }
  } catch (const std::exception& e) {
    impl_->close();
    return make_error(std::errc::io_error, "http " + method + " " + target + ": " + e.what());
  }
  return make_error(std::errc::io_error, "http " + method + " " + target + ": gave up");
}

}  // namespace ringpipe::exporters
