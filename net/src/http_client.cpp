#include "ringpipe/net/http_client.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <optional>

namespace ringpipe::net {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

using Deadline = std::chrono::steady_clock::time_point;

// What a failed step means to a caller that counts failures by reason.
std::error_code reason_of(const beast::error_code& ec, bool connecting) {
  if (ec == beast::error::timeout) return std::make_error_code(std::errc::timed_out);
  if (ec == http::error::body_limit) return std::make_error_code(std::errc::message_size);
  if (connecting) return std::make_error_code(std::errc::connection_refused);
  return std::make_error_code(std::errc::io_error);
}

// The Error for a failed step: the reason as its code, and the cause in the
// context unless the code's own message already says it.
Error failure(const beast::error_code& ec, bool connecting, std::string context) {
  const std::error_code code = reason_of(ec, connecting);
  if (code.message() != ec.message()) context += ": " + ec.message();
  return Error{code, std::move(context)};
}

}  // namespace

Result<HttpUrl> parse_http_url(const std::string& url) {
  HttpUrl u;
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
    u.https = true;
  } else {
    return invalid("url " + url + ": expected http(s)://host[:port][/path]");
  }
  const std::string default_port = u.https ? "443" : "80";
  const auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (authority.empty()) return invalid("url " + url + ": no host");
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string::npos) return invalid("url " + url + ": unclosed '['");
    u.host = authority.substr(1, close - 1);
    u.port = close + 1 < authority.size() && authority[close + 1] == ':' ? authority.substr(close + 2) : default_port;
  } else {
    const auto colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    u.port = colon == std::string::npos ? default_port : authority.substr(colon + 1);
  }
  if (u.host.empty() || u.port.empty() || u.port.find_first_not_of("0123456789") != std::string::npos) {
    return invalid("url " + url + ": bad host or port");
  }
  return u;
}

class TlsClientContext {
 public:
  ssl::context ctx{ssl::context::tls_client};
  bool verify = true;
};

Result<std::shared_ptr<TlsClientContext>> make_tls_client_context(const TlsClientOptions& options) {
  try {
    auto c = std::make_shared<TlsClientContext>();
    beast::error_code ec;
    c->ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                           ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                       ec);
    if (ec) return make_error(std::errc::io_error, "tls: options: " + ec.message());
    c->verify = !options.insecure_skip_verify;
    if (c->verify) {
      if (options.ca_file.empty()) {
        c->ctx.set_default_verify_paths(ec);
        if (ec) return make_error(std::errc::io_error, "tls: system CAs: " + ec.message());
      } else {
        c->ctx.load_verify_file(options.ca_file, ec);
        if (ec) return make_error(std::errc::io_error, "tls: ca_file " + options.ca_file + ": " + ec.message());
      }
      c->ctx.set_verify_mode(ssl::verify_peer, ec);
    } else {
      c->ctx.set_verify_mode(ssl::verify_none, ec);
    }
    if (ec) return make_error(std::errc::io_error, "tls: verify mode: " + ec.message());
    if (!options.cert_file.empty()) {
      c->ctx.use_certificate_chain_file(options.cert_file, ec);
      if (ec) return make_error(std::errc::io_error, "tls: cert_file " + options.cert_file + ": " + ec.message());
      const std::string& key = options.key_file.empty() ? options.cert_file : options.key_file;
      c->ctx.use_private_key_file(key, ssl::context::pem, ec);
      if (ec) return make_error(std::errc::io_error, "tls: key_file " + key + ": " + ec.message());
    } else if (!options.key_file.empty()) {
      return invalid("tls: key_file without cert_file");
    }
    return c;
  } catch (const std::exception& e) {
    return make_error(std::errc::io_error, std::string("tls: ") + e.what());
  }
}

struct HttpClient::Impl {
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;
  asio::io_context ioc;
  std::shared_ptr<TlsClientContext> tls_ctx;
  beast::tcp_stream plain{ioc};
  std::optional<TlsStream> tls;  // a fresh one per connection (an SSL object is not reusable)
  beast::flat_buffer buffer;
  bool connected = false;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : plain; }

  // Runs the queued async operation to completion (the deadline is on the stream).
  void run() {
    ioc.restart();
    ioc.run();
  }

  // Runs `op(stream)` on the plain or the TLS stream.
  template <typename Op>
  void with_stream(Op&& op) {
    if (tls) {
      op(*tls);
    } else {
      op(plain);
    }
  }

  // Connects (and for https handshakes) before `deadline`; `step` names what failed.
  beast::error_code connect(const HttpUrl& url, Deadline deadline, std::string& step) {
    beast::error_code ec;
    if (url.https) {
      step = "tls";
      if (!tls_ctx) return asio::error::make_error_code(asio::error::operation_not_supported);
      tls.emplace(ioc, tls_ctx->ctx);
      boost::system::error_code addr_ec;
      (void)asio::ip::make_address(url.host, addr_ec);
      const bool literal = !addr_ec;
      // SNI carries names only, never address literals (RFC 6066).
      if (!literal && ::SSL_ctrl(tls->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                                 const_cast<char*>(url.host.c_str())) != 1) {
        return {static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()};
      }
      if (tls_ctx->verify) tls->set_verify_callback(ssl::host_name_verification(url.host), ec);
      if (ec) return ec;
    }
    step = "resolve";
    asio::ip::tcp::resolver resolver(ioc);
    const auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) return ec;
    step = "connect";
    lowest().expires_at(deadline);
    lowest().async_connect(endpoints, [&](beast::error_code e, const asio::ip::tcp::endpoint&) { ec = e; });
    run();
    if (ec) return ec;
    lowest().socket().set_option(asio::ip::tcp::no_delay(true), ec);
    ec = {};
    if (tls) {
      step = "tls handshake";
      tls->async_handshake(ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
      run();
      if (ec) return ec;
    }
    connected = true;
    return ec;
  }

  void close() noexcept {
    beast::error_code ec;
    // No TLS close_notify: the connection is dropped either way, and a
    // peer that went away must not stall the caller.
    lowest().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    lowest().socket().close(ec);
    tls.reset();
    connected = false;
    buffer.clear();
  }
};

HttpClient::HttpClient(HttpUrl url, std::shared_ptr<TlsClientContext> tls)
    : url_(std::move(url)), impl_(std::make_unique<Impl>()) {
  impl_->tls_ctx = std::move(tls);
}
HttpClient::~HttpClient() { close(); }

void HttpClient::close() noexcept {
  if (impl_) impl_->close();
}

Result<HttpResponse> HttpClient::request(const std::string& method, const std::string& target,
                                         const HttpHeaders& headers, const std::string& body,
                                         std::chrono::milliseconds timeout, std::uint64_t max_body_bytes) noexcept {
  const Deadline deadline = std::chrono::steady_clock::now() + timeout;
  const std::string where =
      std::string(url_.https ? "https " : "http ") + method + " " + url_.host + ":" + url_.port + target;
  try {
    if (url_.https && !impl_->tls_ctx) {
      return make_error(std::errc::protocol_not_supported, where + ": https without a TLS context");
    }
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
        std::string step;
        ec = impl_->connect(url_, deadline, step);
        if (ec) {
          impl_->close();
          return tl::unexpected(failure(ec, true, where + ": " + step));
        }
      }
      impl_->lowest().expires_at(deadline);
      impl_->with_stream(
          [&](auto& s) { http::async_write(s, req, [&](beast::error_code e, std::size_t) { ec = e; }); });
      impl_->run();
      http::response_parser<http::string_body> parser;
      parser.body_limit(max_body_bytes);
      if (!ec) {
        impl_->with_stream([&](auto& s) {
          http::async_read_header(s, impl_->buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
        });
        impl_->run();
      }
      // Beast 1.74 applies body_limit to chunked and to-EOF bodies but not
      // to a Content-Length one: check that before reading it.
      if (!ec && parser.content_length() && *parser.content_length() > max_body_bytes) ec = http::error::body_limit;
      if (!ec && !parser.is_done()) {
        impl_->with_stream([&](auto& s) {
          http::async_read(s, impl_->buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
        });
        impl_->run();
      }
      if (ec) {
        impl_->close();
        const bool stale =
            reused && (ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
                       ec == asio::error::broken_pipe || ec == asio::error::eof || ec == ssl::error::stream_truncated);
        if (stale && attempt == 0) continue;
        return tl::unexpected(failure(ec, false, where));
      }
      auto res = parser.release();
      if (!res.keep_alive()) impl_->close();
      return HttpResponse{static_cast<int>(res.result_int()), std::string(res[http::field::content_type]),
                          std::move(res.body())};
    }
  } catch (const std::exception& e) {
    impl_->close();
    return make_error(std::errc::io_error, where + ": " + e.what());
  }
  return make_error(std::errc::io_error, where + ": gave up");
}

}  // namespace ringpipe::net
