#include "ringpipe/ingest/remote_write_source.hpp"

#include <optional>
#include <thread>
#include <tuple>

#include <spdlog/spdlog.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "remote_write_decoder.hpp"
#include "source_stats.hpp"
#include "stream_session.hpp"
#include "worker.hpp"

namespace ringpipe::ingest {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr std::uint32_t kMaxHeaderBytes = 16 * 1024;
constexpr std::size_t kUncompressedFactor = 8;  // max uncompressed = 8 * max_body_bytes

http::status status_of(RemoteWriteAnswer a) noexcept {
  switch (a) {
    case RemoteWriteAnswer::k204:
      return http::status::no_content;
    case RemoteWriteAnswer::k400:
      return http::status::bad_request;
    case RemoteWriteAnswer::k404:
      return http::status::not_found;
    case RemoteWriteAnswer::k405:
      return http::status::method_not_allowed;
    case RemoteWriteAnswer::k413:
      return http::status::payload_too_large;
    case RemoteWriteAnswer::k415:
      return http::status::unsupported_media_type;
    case RemoteWriteAnswer::k503:
    case RemoteWriteAnswer::kCount:
      break;
  }
  return http::status::service_unavailable;
}

// Content-Type "application/x-protobuf" with optional parameters (remote_write 2.0 adds proto=...).
bool protobuf_type(std::string_view t) noexcept {
  constexpr std::string_view kType = "application/x-protobuf";
  return t.substr(0, kType.size()) == kType && (t.size() == kType.size() || t[kType.size()] == ';');
}

std::string_view sv(beast::string_view s) noexcept { return {s.data(), s.size()}; }

}  // namespace

std::string_view remote_write_answer_code(RemoteWriteAnswer a) noexcept {
  static constexpr std::array<std::string_view, kRemoteWriteAnswerCount> kCodes{"204", "400", "404", "405",
                                                                                "413", "415", "503"};
  return a < RemoteWriteAnswer::kCount ? kCodes[static_cast<std::size_t>(a)] : "unknown";
}

struct RemoteWriteSource::Impl {
  RemoteWriteConfig config;
  std::string what;
  IngestStats stats;
  RemoteWriteStats rw;
  RateLimiter error_log;
  asio::io_context io{1};
  std::unique_ptr<Worker> worker;
  RemoteWriteDecoder decoder;
  std::unique_ptr<StreamListener<asio::ip::tcp>> listener;
  std::unique_ptr<stats::Publisher> publisher;
  std::uint16_t port = 0;
  std::thread thread;
  std::atomic<bool> stopping{false};
  bool started = false;

  explicit Impl(const RemoteWriteConfig& c)
      : config(c),
        what("remote_write " + c.name),
        error_log(c.error_log_interval),
        decoder(RemoteWriteLimits{c.max_body_bytes, c.max_body_bytes * kUncompressedFactor, c.max_labels,
                                  c.max_series_per_request, c.max_labels_per_request, c.max_samples_per_request}) {}

  // Bytes of the request bodies being read now (io thread only), against
  // config.max_inflight_body_bytes.
  std::size_t inflight_body_bytes = 0;
  // Takes `bytes` of the in-flight budget; false (counted) when it is spent.
  // A body is always let in when none is being read, so one request up to
  // max_body_bytes can pass whatever the budget.
  bool reserve_body(std::size_t bytes) noexcept {
    if (inflight_body_bytes > 0 && inflight_body_bytes + bytes > config.max_inflight_body_bytes) {
      rw.body_refusals.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    inflight_body_bytes += bytes;
    return true;
  }
  void release_body(std::size_t bytes) noexcept { inflight_body_bytes -= std::min(bytes, inflight_body_bytes); }

  struct Answer {
    RemoteWriteAnswer code;
    std::string message;
  };
  // One request body: decode, one claim, convert, commit. On the io thread.
  Answer handle(std::string_view body) noexcept;
  // A refusal before the body is read, counted by reason.
  void count(ParseError e) noexcept {
    worker->count(e);
    worker->end();
  }
};

RemoteWriteSource::Impl::Answer RemoteWriteSource::Impl::handle(std::string_view body) noexcept {
  rw.requests.fetch_add(1, std::memory_order_relaxed);
  rw.bytes.fetch_add(body.size(), std::memory_order_relaxed);
  ParseCounters& c = worker->counters();
  struct Release {
    RemoteWriteDecoder& d;
    ~Release() { d.release(); }
  } release{decoder};
  const DecodeStatus st = decoder.decode(body, c);
  if (st != DecodeStatus::kNone) {
    worker->end();
    const bool too_large = st == DecodeStatus::kTooLarge || st == DecodeStatus::kTooManyObjects;
    return {too_large ? RemoteWriteAnswer::k413 : RemoteWriteAnswer::k400, std::string(decode_status_name(st))};
  }
  const bool any = decoder.sample_count() > 0;
  if (any) worker->begin(realtime_ns(), decoder.batch_bytes_bound());
  const ConvertResult r = decoder.convert(worker->out(), c);
  const std::uint64_t dropped = worker->out().dropped();
  const std::uint64_t too_large = worker->out().too_large();
  worker->end();
  if (dropped > 0) {
    return {RemoteWriteAnswer::k503,
            "the ring refused the write (full): " + std::to_string(dropped) + " samples not written, retry"};
  }
  if (r.series_rejected > 0) {
    return {RemoteWriteAnswer::k400, std::to_string(r.series_rejected) + " of " + std::to_string(r.series) +
                                         " series rejected (first: " + std::string(parse_error_name(r.first_reason)) +
                                         "), the others written"};
  }
  if (too_large > 0) {
    return {RemoteWriteAnswer::k400, std::to_string(too_large) + " samples larger than a ring record, not written"};
  }
  return {RemoteWriteAnswer::k204, {}};
}

namespace {

// One HTTP/1.1 connection: header, then body, then the answer; keep-alive
// unless the client or an early refusal closes it. Runs on the io thread.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(asio::ip::tcp::socket socket, RemoteWriteSource::Impl& src) : stream_(std::move(socket)), src_(src) {}
  ~HttpSession() { give_back_body(); }

  void start() { read_header(); }

 private:
  using Answer = RemoteWriteSource::Impl::Answer;

  void read_header() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(src_.config.max_body_bytes);
    stream_.expires_after(src_.config.idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return fail(ec);
    const auto& req = parser_->get();
    std::string_view target = sv(req.target());
    target = target.substr(0, target.find('?'));
    if (target != src_.config.path)
      return refuse({RemoteWriteAnswer::k404, "no such path, POST to " + src_.config.path});
    if (req.method() != http::verb::post) return refuse({RemoteWriteAnswer::k405, "remote_write takes POST"});
    const auto enc = req.find(http::field::content_encoding);
    const auto type = req.find(http::field::content_type);
    if ((enc != req.end() && !beast::iequals(enc->value(), "snappy")) ||
        (type != req.end() && !protobuf_type(sv(type->value())))) {
      src_.count(ParseError::kUnsupportedMediaType);
      return refuse(
          {RemoteWriteAnswer::k415, "expected Content-Encoding: snappy, Content-Type: application/x-protobuf"});
    }
    if (beast::iequals(req[http::field::expect], "100-continue")) {  // curl, for bodies over 1 KiB
      continue_ = std::make_unique<http::response<http::empty_body>>(http::status::continue_, 11);
      http::async_write(stream_, *continue_, [self = shared_from_this()](beast::error_code e, std::size_t) {
        if (e) return self->fail(e);
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    // Beast's string body reserves the declared length at once: take it (or,
    // chunked, the most a body may be) from the in-flight budget first.
    const auto length = parser_->content_length();
    const std::size_t want =
        length ? static_cast<std::size_t>(std::min<std::uint64_t>(*length, src_.config.max_body_bytes))
               : src_.config.max_body_bytes;
    if (!src_.reserve_body(want)) {
      return refuse({RemoteWriteAnswer::k503, "too many request bodies in flight, retry"});
    }
    reserved_ = want;
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code e, std::size_t) { self->on_body(e); });
  }

  void on_body(beast::error_code ec) {
    if (ec) return fail(ec);
    const bool keep = parser_->get().keep_alive();
    Answer a = src_.handle(parser_->get().body());
    parser_.reset();  // the body's memory goes back before the answer is written
    give_back_body();
    respond(std::move(a), !keep);
  }

  void give_back_body() noexcept {
    src_.release_body(reserved_);
    reserved_ = 0;
  }

  // An answer before the body is read: the body is not drained, so the connection closes.
  void refuse(Answer a) { respond(std::move(a), true); }

  void respond(Answer a, bool close_after) {
    src_.rw.responses[static_cast<std::size_t>(a.code)].fetch_add(1, std::memory_order_relaxed);
    res_ = {};
    res_.version(11);
    res_.result(status_of(a.code));
    if (a.code == RemoteWriteAnswer::k405) res_.set(http::field::allow, "POST");
    if (!a.message.empty()) {
      res_.set(http::field::content_type, "text/plain; charset=utf-8");
      res_.body() = std::move(a.message);
      res_.body() += '\n';
    }
    if (a.code == RemoteWriteAnswer::k503) res_.set(http::field::retry_after, "1");
    res_.keep_alive(!close_after);
    res_.prepare_payload();
    stream_.expires_after(src_.config.idle_timeout);
    http::async_write(stream_, res_, [self = shared_from_this(), close_after](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      if (close_after) return self->linger();
      self->read_header();
    });
  }

  // Closing with unread request bytes makes the kernel send a reset, which can
  // destroy the answer before the client reads it: stop sending, then read and
  // discard until the client closes (or a second passes).
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::min<std::chrono::milliseconds>(src_.config.idle_timeout, std::chrono::seconds(1)));
    stream_.async_read_some(asio::buffer(discard_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->linger();
    });
  }

  void fail(beast::error_code ec) {
    if (ec == http::error::body_limit) {  // Content-Length or the chunks over max_body_bytes
      src_.count(ParseError::kBodyTooLarge);
      return refuse({RemoteWriteAnswer::k413, "body over " + std::to_string(src_.config.max_body_bytes) + " bytes"});
    }
    if (ec == beast::error::timeout) {
      close();
      src_.stats.tcp.idle_closed.fetch_add(1, std::memory_order_release);
      return;
    }
    if (ec != http::error::end_of_stream && ec != asio::error::eof && ec != asio::error::operation_aborted &&
        ec != asio::error::connection_reset) {
      src_.stats.tcp.read_errors.fetch_add(1, std::memory_order_relaxed);
      if (ec.category() == http::make_error_code(http::error::bad_target).category() && !closed_) {
        // Not HTTP at all: say so once and close.
        return refuse({RemoteWriteAnswer::k400, "bad HTTP request: " + ec.message()});
      }
    }
    close();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    give_back_body();
    parser_.reset();
    beast::error_code ignored;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    stream_.close();
    src_.stats.tcp.connections_open.fetch_sub(1, std::memory_order_relaxed);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  std::unique_ptr<http::response<http::empty_body>> continue_;
  RemoteWriteSource::Impl& src_;
  std::array<char, 4096> discard_{};
  std::size_t reserved_ = 0;  // of the in-flight body budget
  bool closed_ = false;
};

}  // namespace

Result<std::unique_ptr<RemoteWriteSource>> RemoteWriteSource::create(const RemoteWriteConfig& config,
                                                                     const TargetFactory& targets) {
  auto impl = std::make_unique<Impl>(config);
  const std::string& what = impl->what;
  if (config.path.empty() || config.path[0] != '/') return invalid(what + ": path must start with '/'");
  if (config.max_labels == 0 || config.max_labels > kMaxTags)
    return invalid(what + ": max_labels must be from 1 to " + std::to_string(kMaxTags));
  if (config.max_body_bytes == 0) return invalid(what + ": max_body_bytes must be > 0");

  IngestConfig ic;
  ic.name = config.name;
  ic.source_id = config.source_id;
  ic.relabel = config.relabel;
  ic.error_log_interval = config.error_log_interval;
  TcpConfig tcp;
  tcp.address = config.address;
  tcp.port = config.port;
  tcp.max_connections = config.max_connections;
  tcp.idle_timeout = config.idle_timeout;
  ic.tcp = tcp;  // so the publisher mirrors the connection counters (transport="tcp")
  auto t = targets();
  if (!t) return tl::unexpected(Error{t.error().code, what + ": " + t.error().context});
  impl->worker = std::make_unique<Worker>(ic, std::move(*t), impl->stats, impl->error_log);

  boost::system::error_code ec;
  const auto address = asio::ip::make_address(config.address, ec);
  if (ec) return invalid(what + ": listen address " + config.address + ": " + ec.message());
  const StreamLimits limits{config.max_connections, 1, 0, config.idle_timeout, config.error_log_interval};
  auto l = StreamListener<asio::ip::tcp>::open(impl->io, asio::ip::tcp::endpoint(address, config.port), limits,
                                               *impl->worker, impl->stats.tcp,
                                               what + " " + config.address + ":" + std::to_string(config.port));
  if (!l) return tl::unexpected(l.error());
  impl->listener = std::move(*l);
  impl->port = impl->listener->local_port();
  Impl* raw = impl.get();
  impl->listener->set_session_factory(
      [raw](asio::ip::tcp::socket s) { std::make_shared<HttpSession>(std::move(s), *raw)->start(); });

  auto p = open_source_publisher(config.stats_segment, config.stats_path, ic, impl->stats, what);
  if (!p) return tl::unexpected(p.error());
  if (*p) {
    const RemoteWriteStats& rw = impl->rw;
    if (auto s = (*p)->add_counter(rw.requests, "source_remote_write_requests_total",
                                   "remote_write request bodies read.", {});
        !s)
      return tl::unexpected(Error{s.error().code, what + ": stats: " + s.error().context});
    if (auto s =
            (*p)->add_counter(rw.bytes, "source_remote_write_bytes_total", "remote_write request body bytes read.", {});
        !s)
      return tl::unexpected(Error{s.error().code, what + ": stats: " + s.error().context});
    if (auto s =
            (*p)->add_counter(rw.body_refusals, "source_remote_write_body_refusals_total",
                              "remote_write requests answered 503 before their body: in-flight body budget spent.", {});
        !s)
      return tl::unexpected(Error{s.error().code, what + ": stats: " + s.error().context});
    for (std::size_t i = 0; i < kRemoteWriteAnswerCount; ++i) {
      const auto a = static_cast<RemoteWriteAnswer>(i);
      if (auto s = (*p)->add_counter(rw.responses[i], "source_remote_write_responses_total",
                                     "remote_write answers by HTTP status code.",
                                     {{"code", std::string(remote_write_answer_code(a))}});
          !s)
        return tl::unexpected(Error{s.error().code, what + ": stats: " + s.error().context});
    }
    impl->publisher = std::move(*p);
  }
  return std::unique_ptr<RemoteWriteSource>(new RemoteWriteSource(std::move(impl)));
}

RemoteWriteSource::RemoteWriteSource(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

RemoteWriteSource::~RemoteWriteSource() { stop(); }

Status RemoteWriteSource::start() {
  if (impl_->started) return invalid(impl_->what + ": already started");
  impl_->started = true;
  impl_->listener->start();
  if (impl_->publisher) {
    if (Status publishing = impl_->publisher->start(impl_->config.stats_interval); !publishing) {
      return tl::unexpected(Error{publishing.error().code, impl_->what + ": start: " + publishing.error().context});
    }
  }
  try {
    impl_->thread = std::thread([this] {
      Impl& s = *impl_;
      for (;;) {
        try {
          s.io.run();
          return;
        } catch (const std::exception& e) {  // Asio handlers do not throw; a bad_alloc might
          spdlog::error("{}: {}", s.what, e.what());
        }
      }
    });
  } catch (const std::exception& e) {
    if (impl_->publisher) impl_->publisher->stop();
    return invalid(impl_->what + ": start: " + e.what());
  }
  return {};
}

void RemoteWriteSource::stop() noexcept {
  impl_->stopping.store(true, std::memory_order_release);
  // Requests are handled whole inside one handler, so nothing is half-written here.
  impl_->io.stop();
  if (!impl_->thread.joinable()) return;
  impl_->thread.join();
  if (impl_->publisher) impl_->publisher->stop();  // exact totals at stop
}

const IngestStats& RemoteWriteSource::stats() const noexcept { return impl_->stats; }
const RemoteWriteStats& RemoteWriteSource::remote_write_stats() const noexcept { return impl_->rw; }
std::uint16_t RemoteWriteSource::port() const noexcept { return impl_->port; }

}  // namespace ringpipe::ingest
