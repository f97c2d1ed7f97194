#include "http_endpoint.hpp"

#include <crypt.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <prometheus/text_serializer.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "gzip_encoding.hpp"
#include "protobuf_writer.hpp"
#include "ringpipe/common/log.hpp"
#include "tls_server.hpp"

namespace ringpipe::exporters {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// A request header larger than this is answered 400.
constexpr std::uint32_t kMaxHeaderBytes = 16 * 1024;
// Each write of an answer moves at most this much and must finish within the
// header timeout, so a client that stops reading is cut off, and a large page
// is not held to one deadline for all of it.
constexpr std::size_t kWriteChunkBytes = std::size_t{256} << 10;
// How long a scrape that joined a render another scrape started waits for it.
constexpr std::chrono::seconds kSharedRenderWait{30};
// How many nice levels below the exporter's other threads its page renders
// (and the gzip workers they start) run.
constexpr int kRenderNiceSteps = 10;
// How long a TLS connection waits for the client's close_notify after the answer.
constexpr std::chrono::seconds kTlsShutdownWait{1};

std::string_view sv(beast::string_view s) noexcept { return {s.data(), s.size()}; }

// One rendering of the page: its text and its gzip encoding, made at most
// once, on the render thread, when a scrape that shares the rendering asked
// for gzip. Thread-safe.
class RenderedPage {
 public:
  explicit RenderedPage(std::string text) noexcept : text_(std::move(text)) {}
  [[nodiscard]] const std::string& text() const noexcept { return text_; }
  // The gzip bytes, made by `compress(text())` on first use; nullptr when that failed.
  template <typename Compress>
  [[nodiscard]] const std::string* gzip(Compress&& compress) const {
    std::call_once(gzip_once_, [&] { gzip_ = compress(text_); });
    return gzip_ ? &*gzip_ : nullptr;
  }

 private:
  std::string text_;
  mutable std::once_flag gzip_once_;
  mutable std::optional<std::string> gzip_;
};

// One rendering of the page, shared by every scrape that asks while it is
// being made: at most one render runs, the others get the same page, so a
// page is at most one render's duration old. Scrapes do not wait on a thread
// of their own: each leaves a callback, which the render thread calls with
// the page (first those that want it as is, then, after the one compression,
// those that want gzip).
// Renders run on one thread of the cache's own: a page of 100k series
// allocates some 100 MB of short-lived objects, and on one thread they reuse
// one warm malloc arena (collect took 30-40 % longer spread over workers).
// Thread-safe; callbacks run on the render thread and must not block.
class PageCache {
 public:
  using Page = std::shared_ptr<const RenderedPage>;
  using Waiter = std::function<void(const Page&)>;  // nullptr: the render failed
  using Compress = std::function<std::optional<std::string>(const std::string&)>;

  PageCache(std::function<std::string()> render, Compress compress)
      : render_(std::move(render)), compress_(std::move(compress)), thread_([this] { run(); }) {}
  PageCache(const PageCache&) = delete;
  PageCache& operator=(const PageCache&) = delete;
  ~PageCache() { stop(); }

  // Leaves `done` for a page rendered after this call began, or the one being
  // rendered when it began, gzip-compressed first when `gzip`. True when this
  // call asked for a new render; false when it joined one another scrape asked
  // for (the caller bounds its wait), or the cache is stopped (never called).
  bool get(bool gzip, Waiter done) {
    std::lock_guard lock(mu_);
    if (stop_) return false;
    const bool ask = !rendering_ && !requested_;
    Waiters& to = rendering_ ? current_ : next_;
    (gzip ? to.gzip : to.plain).push_back(std::move(done));
    if (ask) {
      requested_ = true;
      cv_.notify_all();
    }
    return ask;
  }

  // Joins the render thread; callbacks not yet called are dropped.
  void stop() noexcept {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    Waiters next;
    Waiters current;
    {
      std::lock_guard lock(mu_);
      next = std::move(next_);
      current = std::move(current_);
    }
  }

 private:
  struct Waiters {
    std::vector<Waiter> plain;
    std::vector<Waiter> gzip;
  };

  static void deliver(std::vector<Waiter>& waiters, const Page& page) noexcept {
    for (Waiter& w : waiters) {
      try {
        w(page);
      } catch (...) {
        // no memory to queue the answer: that scrape's connection closes unanswered
      }
    }
    waiters.clear();
  }

  void run() {
    yield_to_pipeline();
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return requested_ || stop_; });
      if (stop_) return;
      requested_ = false;
      rendering_ = true;
      current_ = std::move(next_);
      next_ = {};
      lock.unlock();
      Page page;
      try {
        page = std::make_shared<const RenderedPage>(render_());
      } catch (...) {
        page = nullptr;
      }
      lock.lock();
      rendering_ = false;
      Waiters done = std::move(current_);
      current_ = {};
      lock.unlock();
      deliver(done.plain, page);
      if (page && !done.gzip.empty()) {
        try {
          (void)page->gzip(compress_);
        } catch (...) {
          // the page goes uncompressed
        }
      }
      deliver(done.gzip, page);
      page = nullptr;
      // A render's temporaries (a page of 1M series: ~100 MB) were freed into
      // this thread's malloc arena, which keeps most of them: hand the free
      // pages back, or the exporter stays that much larger between scrapes.
      malloc_trim(0);
      lock.lock();
    }
  }

  // A render yields the CPU to the pipeline. A page of 1M series is most of a
  // second of a core; on a host short of CPU, a render at the same priority
  // as the ring reader held that reader back, the metric ring filled, the
  // processor and then the source waited, and the source's socket dropped
  // datagrams. Nice is per thread on Linux, threads this one starts (gzip's
  // workers) inherit it, and a higher value needs no privilege. With spare
  // CPU it changes nothing. The walk of the series holds one shard's lock at
  // a time, and a reader that needs that shard waits at the render's pace
  // meanwhile; runs that put the render back at its old priority while it
  // held a lock dropped no fewer datagrams.
  static void yield_to_pipeline() noexcept {
    const auto tid = static_cast<id_t>(::gettid());
    errno = 0;
    const int now = ::getpriority(PRIO_PROCESS, tid);
    if (errno != 0) return;
    if (::setpriority(PRIO_PROCESS, tid, std::min(now + kRenderNiceSteps, 19)) != 0) {
      spdlog::warn("prometheus exporter: the page render thread keeps its priority: setpriority: {}",
                   std::strerror(errno));
    }
  }

  std::function<std::string()> render_;
  Compress compress_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;  // a scrape asked; the render thread has not begun
  bool rendering_ = false;
  bool stop_ = false;
  Waiters next_;        // for the render asked for, not begun
  Waiters current_;     // for the render in progress
  std::thread thread_;  // last: it uses the members above
};

std::optional<std::string> base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

bool same_secret(const std::string& a, const std::string& b) noexcept {
  // Length leaks; content does not.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

// HTTP requests answered, by path and status code, and the response body
// bytes sent, by path (after compression). Paths other than the three served
// share one "other" label, so a scanner cannot grow the page. Thread-safe.
class RequestCounters {
 public:
  enum Path : std::size_t { kMetrics, kHealthy, kReady, kOther, kPaths };
  // The family is on the page from the start, so a pipeline that scrapes
  // another ringpipe never serves that one's under our name (see
  // drop_pipeline_families_named_like_ours in prometheus_exporter.cpp).
  RequestCounters() { requests_[{kMetrics, 200}] = 0; }
  void count(Path path, int status, std::uint64_t body_bytes) {
    if (status < 100 || status > 599) status = 0;
    std::lock_guard lock(mu_);
    ++requests_[{path, status}];
    bytes_[path] += body_bytes;
  }
  void describe(FamilyBuilder& out, const std::string& metrics_path) const {
    const std::array<std::string, kPaths> names{metrics_path, "/-/healthy", "/-/ready", "other"};
    std::lock_guard lock(mu_);
    for (const auto& [key, n] : requests_) {
      out.sample(self_metric(SelfMetricId::kHttpRequests),
                 {{"path", names[key.first]}, {"code", key.second == 0 ? "unknown" : std::to_string(key.second)}},
                 static_cast<double>(n));
    }
    for (std::size_t p = kMetrics; p < kOther; ++p) {
      out.sample(self_metric(SelfMetricId::kHttpResponseBytes), {{"path", names[p]}}, static_cast<double>(bytes_[p]));
    }
  }

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::size_t, int>, std::uint64_t> requests_;
  std::array<std::uint64_t, kPaths> bytes_{};
};

// Whether `password` hashes to the bcrypt `hash`, by libxcrypt. crypt_rn
// writes "*0"/"*1" (never a match) for a setting it rejects.
bool bcrypt_matches(const std::string& password, const std::string& hash) {
  auto data = std::make_unique<crypt_data>();  // ~32 KiB: not on a thread's stack
  const char* out = ::crypt_rn(password.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
  return out != nullptr && out[0] != '*' && same_secret(hash, out);
}

// Credentials that matched a bcrypt hash, so that a scraper's every request
// does not pay the hash's cost (tens of ms at cost 10), as the
// exporter-toolkit caches them too. Bounded; thread-safe.
class BcryptCache {
 public:
  bool matches(const std::string& user, const std::string& password, const std::string& hash) {
    std::string key = user;
    key.append(1, '\0').append(password).append(1, '\0').append(hash);
    {
      const std::lock_guard lock(mutex_);
      if (ok_.count(key) != 0) return true;
    }
    if (!bcrypt_matches(password, hash)) return false;
    const std::lock_guard lock(mutex_);
    if (ok_.size() >= kMaxEntries) ok_.clear();
    ok_.insert(std::move(key));
    return true;
  }

 private:
  static constexpr std::size_t kMaxEntries = 256;
  std::mutex mutex_;
  std::set<std::string> ok_;
};

// "[::1]:9102", "0.0.0.0:9102", ":9102" (every address).
std::string shown_address(const std::string& host, std::uint16_t port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::error_code std_code(const boost::system::error_code& ec) {
  if (ec.category() == boost::system::system_category()) return {ec.value(), std::system_category()};
  return std::make_error_code(std::errc::io_error);
}

}  // namespace

std::string PageSource::render_page() { return prometheus::TextSerializer().Serialize(Collect()); }

std::string PageSource::render_protobuf_page() {
  std::string out;
  protobuf::append_families(out, Collect(), {});
  return out;
}

struct HttpEndpoint::Impl {
  Impl(const PrometheusExporterOptions& o, PageSource& s) : options(o), source(s) {
    for (const BasicAuthCredentials& u : options.basic_auth_users) any_bcrypt |= u.bcrypt;
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() { shut_down(); }

  // Members a connection uses come before `io`: connections still queued in
  // it are destroyed with it, and count themselves closed on the way.
  PrometheusExporterOptions options;
  PageSource& source;
  HttpCounters http;
  RequestCounters requests;
  DurationHistogram render_text;  // Collect and serialization of one page
  DurationHistogram render_gzip;  // compression of one page
  mutable BcryptCache bcrypt_ok;  // authorized() is const; the cache is its own lock
  bool any_bcrypt = false;
  std::atomic<std::uint64_t> pages_served{0};
  std::atomic<bool> stopping{false};
  std::chrono::milliseconds timeout{5000};  // header_timeout, at least 100 ms
  std::shared_ptr<ssl::context> tls;
  int port = 0;

  asio::io_context io;
  // The acceptor, its retry timer and accept_paused belong to accept_strand.
  asio::strand<asio::io_context::executor_type> accept_strand{asio::make_strand(io)};
  std::optional<tcp::acceptor> acceptor;
  asio::steady_timer accept_retry{accept_strand};
  bool accept_paused = false;  // at the connection limit: resumed when one closes
  std::vector<std::thread> threads;
  std::unique_ptr<asio::thread_pool> blocking;  // bcrypt checks, off the I/O threads
  bool down = false;                            // shut_down() ran; the owner's thread only
  PageCache pages{[this] { return render(false); }, [this](const std::string& text) { return compress(text); }};
  PageCache protobuf_pages{[this] { return render(true); }, [this](const std::string& text) { return compress(text); }};

  std::string render(bool protobuf) {
    const std::int64_t t0 = monotonic_ns();
    std::string text = protobuf ? source.render_protobuf_page() : source.render_page();
    render_text.observe(static_cast<double>(monotonic_ns() - t0) * 1e-9);
    return text;
  }

  // The gzip encoding of a rendering, made once per rendering (RenderedPage).
  std::optional<std::string> compress(const std::string& text) {
    const std::int64_t t0 = monotonic_ns();
    // A page of many pieces is deflated on up to 8 cores at once (a 1M-series
    // page in 0.45 s on one): the scrapes sharing this rendering wait for it.
    static const unsigned threads = std::clamp(std::thread::hardware_concurrency(), 1U, 8U);
    std::optional<std::string> gz = gzip_compress(text, kPageGzipLevel, threads);
    render_gzip.observe(static_cast<double>(monotonic_ns() - t0) * 1e-9);
    if (!gz) spdlog::warn("prometheus exporter: gzip of a {}-byte page failed; answered uncompressed", text.size());
    return gz;
  }

  bool authorized(std::string_view header) const {
    if (options.basic_auth_users.empty()) return true;
    constexpr std::string_view kBasic = "Basic ";
    if (header.substr(0, kBasic.size()) != kBasic) return false;
    const std::optional<std::string> decoded = base64_decode(header.substr(kBasic.size()));
    if (!decoded) return false;
    const auto colon = decoded->find(':');
    if (colon == std::string::npos) return false;
    const std::string user = decoded->substr(0, colon);
    const std::string password = decoded->substr(colon + 1);
    bool ok = false;
    for (const auto& u : options.basic_auth_users) {
      if (!same_secret(u.username, user)) continue;
      ok |= u.bcrypt ? bcrypt_ok.matches(user, password, u.password) : same_secret(u.password, password);
    }
    return ok;
  }

  Status open_acceptor(const std::string& host, std::uint16_t at);
  void accept();
  void on_accept(const boost::system::error_code& ec, tcp::socket socket);
  // A connection closed (once per connection, from any thread).
  void connection_closed(bool saw_request) noexcept;

  void shut_down() noexcept {
    if (down) return;  // by HttpEndpoint::stop(), then by the destructor
    down = true;
    stopping.store(true, std::memory_order_release);
    io.stop();
    for (std::thread& t : threads) t.join();
    threads.clear();
    if (blocking) {
      blocking->stop();
      blocking->join();
    }
    pages.stop();
    protobuf_pages.stop();
  }
};

namespace {

using Path = RequestCounters::Path;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One connection: (TLS handshake,) one request header, one answer, close
// (keep-alive is off, as it was). Every handler runs on the connection's
// strand; the page arrives from the render thread through a post to it.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  Session(HttpEndpoint::Impl& impl, tcp::socket socket) requires(!kTls)
      : impl_(impl), stream_(std::move(socket)), wait_(stream_.get_executor()) {}
  Session(HttpEndpoint::Impl& impl, tcp::socket socket, ssl::context& tls) requires kTls
      : impl_(impl),
        stream_(std::move(socket), tls),
        wait_(stream_.get_executor()) {}
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() { account(); }

  void start() {
    if constexpr (kTls) {
      lowest().expires_after(impl_.timeout);
      stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return self->close();  // counted as a connection without a request
        self->read_header();
      });
    } else {
      read_header();
    }
  }

 private:
  beast::tcp_stream& lowest() noexcept { return beast::get_lowest_layer(stream_); }

  void read_header() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    lowest().expires_after(impl_.timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) {
      if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        return answer(Path::kOther, 400, "Bad request.\n", "", false);  // not HTTP: said once, not counted
      }
      return close();  // idle, slow (timed out) or gone before a whole header
    }
    saw_request_ = true;
    const auto& req = parser_->get();
    std::string_view target = sv(req.target());
    target = target.substr(0, target.find('?'));
    if (target == "/-/healthy") return answer(Path::kHealthy, 200, "OK\n");
    if (target == "/-/ready") {
      if (impl_.source.ready()) return answer(Path::kReady, 200, "OK\n");
      return answer(Path::kReady, 503, "Not ready: waiting for a complete snapshot.\n");
    }
    if (target != impl_.options.path) return answer(Path::kOther, 404, "Not found.\n");
    if (req.method() != http::verb::get) {
      return answer(Path::kMetrics, 405, "Method not allowed: GET only.\n", "Allow: GET\r\n");
    }
    std::string encodings;
    for (auto [it, end] = req.equal_range(http::field::accept_encoding); it != end; ++it) {
      if (!encodings.empty()) encodings += ',';
      encodings += sv(it->value());
    }
    gzip_ = accepts_gzip(encodings);
    std::string accept;
    for (auto [it, end] = req.equal_range(http::field::accept); it != end; ++it) {
      if (!accept.empty()) accept += ',';
      accept += sv(it->value());
    }
    protobuf_ = protobuf::prefers_protobuf(accept);
    authorization_ = std::string(sv(req[http::field::authorization]));
    parser_.reset();
    if (!impl_.any_bcrypt) return authorized(impl_.authorized(authorization_));
    // A bcrypt check takes tens of ms: not on an I/O thread.
    asio::post(*impl_.blocking, [self = this->shared_from_this()] {
      const bool ok = self->impl_.authorized(self->authorization_);
      asio::post(self->stream_.get_executor(), [self, ok] { self->authorized(ok); });
    });
  }

  void authorized(bool ok) {
    if (!ok) {
      return answer(Path::kMetrics, 401, "Unauthorized\n", "WWW-Authenticate: Basic realm=\"ringpipe\"\r\n");
    }
    waiting_ = true;
    auto self = this->shared_from_this();
    PageCache& cache = protobuf_ ? impl_.protobuf_pages : impl_.pages;
    const bool asked = cache.get(gzip_, [self](const PageCache::Page& page) {
      asio::post(self->stream_.get_executor(), [self, page] { self->on_page(page); });
    });
    if (asked) return;  // the scrape that asks for a render waits for it, as if it rendered itself
    wait_.expires_after(kSharedRenderWait);
    wait_.async_wait([self](beast::error_code ec) {
      if (!ec) self->on_page(nullptr);
    });
  }

  void on_page(const PageCache::Page& page) {
    if (!waiting_) return;  // answered 503 already
    waiting_ = false;
    wait_.cancel();
    if (!page) return answer(Path::kMetrics, 503, "The page could not be rendered in time, retry.\n");
    try {
      const std::string* body = &page->text();
      const char* encoding = "";
      if (gzip_) {
        if (const std::string* gz = page->gzip([](const std::string&) { return std::optional<std::string>(); })) {
          body = gz;  // compressed on the render thread; the lambda above never runs then
          encoding = "Content-Encoding: gzip\r\n";
        }
      }
      page_ = page;
      path_ = Path::kMetrics;
      status_ = 200;
      serves_page_ = true;
      head_ = protobuf_ ? "HTTP/1.1 200 OK\r\nContent-Type: " + std::string(protobuf::kContentType) + "\r\n"
                        : std::string("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n");
      head_ += encoding;
      head_ += "Vary: Accept, Accept-Encoding\r\nContent-Length: " + std::to_string(body->size()) +
               "\r\nConnection: close\r\n\r\n";
      body_ = *body;
    } catch (...) {
      impl_.source.serve_failed();
      return close();
    }
    write_head();
  }

  // A short text/plain answer; `extra_headers` are whole "Name: value\r\n" lines.
  void answer(Path path, int status, std::string_view body, std::string_view extra_headers = "", bool count = true) {
    path_ = path;
    status_ = status;
    count_ = count;
    const auto reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status)));
    head_ = "HTTP/1.1 " + std::to_string(status) + " " + std::string(sv(reason)) + "\r\n";
    head_ += extra_headers;
    head_ += "Content-Type: text/plain; charset=utf-8\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\nConnection: close\r\n\r\n";
    body_ = body;  // a literal
    write_head();
  }

  // The head with the body's first chunk, then the rest a chunk at a time,
  // each write within the timeout.
  void write_head() {
    const std::size_t first = std::min(body_.size(), kWriteChunkBytes);
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(body_.data(), first)};
    lowest().expires_after(impl_.timeout);
    asio::async_write(stream_, buffers, [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
      self->body_written_ += n > self->head_.size() ? n - self->head_.size() : 0;
      if (ec) return self->finish(false);
      self->write_body();
    });
  }

  void write_body() {
    if (body_written_ >= body_.size()) return finish(true);
    const std::size_t n = std::min(body_.size() - body_written_, kWriteChunkBytes);
    lowest().expires_after(impl_.timeout);
    asio::async_write(stream_, asio::buffer(body_.data() + body_written_, n),
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t written) {
                        self->body_written_ += written;
                        if (ec) return self->finish(false);
                        self->write_body();
                      });
  }

  // The answer is written (`whole`) or the client went away: count it, close.
  void finish(bool whole) {
    try {
      if (count_) impl_.requests.count(path_, status_, body_written_);
    } catch (...) {
      // no memory for a new series: left uncounted
    }
    if (serves_page_ && whole) {
      impl_.pages_served.fetch_add(1, std::memory_order_relaxed);
      impl_.source.page_served();
    }
    page_.reset();
    body_ = {};
    if constexpr (kTls) {
      if (whole) {
        lowest().expires_after(kTlsShutdownWait);
        stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->close(); });
        return;
      }
    }
    close();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    wait_.cancel();
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
    account();
  }

  void account() noexcept {
    if (accounted_) return;
    accounted_ = true;
    impl_.connection_closed(saw_request_);
  }

  HttpEndpoint::Impl& impl_;
  Stream stream_;
  asio::steady_timer wait_;  // bounds the wait for a render another scrape asked for
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  std::string authorization_;
  bool gzip_ = false;
  bool protobuf_ = false;  // the scraper prefers the protobuf format
  bool saw_request_ = false;
  bool waiting_ = false;  // for a page
  bool serves_page_ = false;
  bool count_ = true;
  bool closed_ = false;
  bool accounted_ = false;
  Path path_ = Path::kOther;
  int status_ = 0;
  std::string head_;
  std::string_view body_;  // into page_ or a literal
  std::size_t body_written_ = 0;
  PageCache::Page page_;
};

}  // namespace

Status HttpEndpoint::Impl::open_acceptor(const std::string& host, std::uint16_t at) {
  const std::string what = "prometheus exporter: listen " + shown_address(host, at);
  struct Candidate {
    tcp::endpoint endpoint;
    bool dual_stack = false;
  };
  std::vector<Candidate> candidates;
  boost::system::error_code ec;
  if (host.empty()) {
    // statsd_exporter's ":9102": one IPv6 socket that takes IPv4 too, or
    // IPv4 alone on a host without IPv6.
    candidates = {{tcp::endpoint(asio::ip::address_v6::any(), at), true},
                  {tcp::endpoint(asio::ip::address_v4::any(), at), false}};
  } else if (const auto address = asio::ip::make_address(host, ec); !ec) {
    candidates = {{tcp::endpoint(address, at), address.is_v6() && address.to_v6().is_unspecified()}};
  } else {
    tcp::resolver resolver(io);
    const auto found = resolver.resolve(host, std::to_string(at), tcp::resolver::passive, ec);
    if (ec || found.empty()) {
      return tl::unexpected(Error{ec ? std_code(ec) : std::make_error_code(std::errc::address_not_available),
                                  what + ": resolve " + host});
    }
    candidates = {{found.begin()->endpoint(), false}};
  }
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    const bool last = i + 1 == candidates.size();
    tcp::acceptor a(io);
    const char* step = "socket";
    if (a.open(c.endpoint.protocol(), ec); !ec) {
      if (c.endpoint.address().is_v6()) a.set_option(asio::ip::v6_only(!c.dual_stack), ec);
      a.set_option(asio::socket_base::reuse_address(true), ec);
      step = "bind";
      if (a.bind(c.endpoint, ec); !ec) {
        step = "listen";
        a.listen(static_cast<int>(std::min<std::uint64_t>(http.limit, 4096)), ec);
      }
    }
    if (!ec) {
      if (i > 0) spdlog::info("prometheus exporter: no IPv6 on this host; listening on IPv4 0.0.0.0:{} only", at);
      acceptor.emplace(std::move(a));
      return {};
    }
    const bool no_ipv6 =
        ec == asio::error::address_family_not_supported || ec == boost::system::errc::address_not_available;
    if (last || !no_ipv6) return tl::unexpected(Error{std_code(ec), what + ": " + step});
  }
  return {};
}

void HttpEndpoint::Impl::accept() {
  acceptor->async_accept(asio::make_strand(io),
                         asio::bind_executor(accept_strand, [this](boost::system::error_code ec, tcp::socket s) {
                           on_accept(ec, std::move(s));
                         }));
}

void HttpEndpoint::Impl::on_accept(const boost::system::error_code& ec, tcp::socket socket) {
  if (stopping.load(std::memory_order_acquire) || ec == asio::error::operation_aborted) return;
  if (ec) {
    // Out of descriptors or memory: try again shortly rather than spin.
    spdlog::warn("prometheus exporter: accept: {}", ec.message());
    accept_retry.expires_after(std::chrono::milliseconds(100));
    accept_retry.async_wait([this](boost::system::error_code e) {
      if (!e && !stopping.load(std::memory_order_acquire)) accept();
    });
    return;
  }
  http.connections.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t open = http.open.fetch_add(1, std::memory_order_relaxed) + 1;
  if (open >= http.limit) http.at_limit.fetch_add(1, std::memory_order_relaxed);
  try {
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (tls) {
      std::make_shared<Session<TlsStream>>(*this, std::move(socket), *tls)->start();
    } else {
      std::make_shared<Session<PlainStream>>(*this, std::move(socket))->start();
    }
  } catch (const std::exception& e) {
    // The session, if made, counted itself closed when it went.
    spdlog::warn("prometheus exporter: connection dropped: {}", e.what());
  }
  if (http.open.load(std::memory_order_relaxed) >= http.limit) {
    accept_paused = true;  // the kernel's backlog holds the next ones
    return;
  }
  accept();
}

void HttpEndpoint::Impl::connection_closed(bool saw_request) noexcept {
  if (!saw_request) http.incomplete.fetch_add(1, std::memory_order_relaxed);
  http.open.fetch_sub(1, std::memory_order_relaxed);
  if (stopping.load(std::memory_order_acquire)) return;
  try {
    asio::post(accept_strand, [this] {
      if (!accept_paused || stopping.load(std::memory_order_acquire)) return;
      if (http.open.load(std::memory_order_relaxed) >= http.limit) return;
      accept_paused = false;
      accept();
    });
  } catch (...) {
    // no memory: the next close resumes accepting
  }
}

Result<std::pair<std::string, std::string>> split_listen(const std::string& listen) {
  std::string host;
  std::string port;
  if (!listen.empty() && listen.front() == '[') {
    const auto close = listen.find(']');
    if (close == std::string::npos) return invalid("listen: " + listen + ": an IPv6 address without ']'");
    host = listen.substr(1, close - 1);
    if (host.empty()) return invalid("listen: " + listen + ": an empty IPv6 address, expected [::]:port or :port");
    if (close + 1 >= listen.size() || listen[close + 1] != ':') {
      return invalid("listen: " + listen + ": expected [address]:port");
    }
    port = listen.substr(close + 2);
  } else {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) return invalid("listen: " + listen + ": expected host:port");
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      return invalid("listen: " + listen + ": an IPv6 address without brackets, expected [address]:port");
    }
  }
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
      std::stoul(port) > 65535) {
    return invalid("listen: " + listen + ": bad port");
  }
  return std::make_pair(host, port);
}

HttpEndpoint::HttpEndpoint(const PrometheusExporterOptions& options, PageSource& source)
    : impl_(std::make_unique<Impl>(options, source)) {}

HttpEndpoint::~HttpEndpoint() = default;

void HttpEndpoint::stop() noexcept { impl_->shut_down(); }

Status HttpEndpoint::listen(const std::string& host, const std::string& port) {
  const std::string what = "prometheus exporter: ";
  Impl& s = *impl_;
  if (!s.threads.empty()) return invalid(what + "already listening");
  // At most max_connections connections are open at once, idle ones
  // included; more wait in the kernel's listen backlog. Each must bring its
  // whole request header within header_timeout, which also bounds each write
  // of the answer.
  s.http.limit = std::clamp<std::size_t>(s.options.max_connections, 4, 16384);
  s.timeout = std::max(std::chrono::milliseconds(100), s.options.header_timeout);
  if (s.options.tls) {
    auto ctx = make_tls_server_context(*s.options.tls);
    if (!ctx) return tl::unexpected(Error{ctx.error().code, what + ctx.error().context});
    s.tls = std::move(*ctx);
  }
  auto split = split_listen(":" + port);
  if (!split) return invalid(what + split.error().context);
  const auto at = static_cast<std::uint16_t>(std::stoul(port));
  if (Status opened = s.open_acceptor(host, at); !opened) return opened;
  boost::system::error_code ec;
  s.port = s.acceptor->local_endpoint(ec).port();
  try {
    if (s.any_bcrypt) s.blocking = std::make_unique<asio::thread_pool>(2);
    asio::post(s.accept_strand, [&s] { s.accept(); });
    // Answers are written asynchronously and pages rendered on their own
    // thread, so a few I/O threads serve every connection.
    const unsigned n = std::clamp(std::thread::hardware_concurrency(), 2u, 4u);
    for (unsigned i = 0; i < n; ++i) {
      s.threads.emplace_back([&s] {
        for (;;) {
          try {
            s.io.run();
            return;
          } catch (const std::exception& e) {  // handlers do not throw; a bad_alloc might
            spdlog::error("prometheus exporter: http server: {}", e.what());
          }
        }
      });
    }
  } catch (const std::exception& e) {
    s.shut_down();
    return make_error(std::errc::resource_unavailable_try_again, what + "http server threads: " + e.what());
  }
  return {};
}

std::uint16_t HttpEndpoint::port() const noexcept { return static_cast<std::uint16_t>(impl_->port); }

const HttpCounters& HttpEndpoint::counters() const noexcept { return impl_->http; }

std::uint64_t HttpEndpoint::pages_served() const noexcept {
  return impl_->pages_served.load(std::memory_order_relaxed);
}

void HttpEndpoint::describe(FamilyBuilder& out) const {
  using enum SelfMetricId;
  const HttpCounters& http = impl_->http;
  auto ld = [](const std::atomic<std::uint64_t>& a) { return static_cast<double>(a.load(std::memory_order_relaxed)); };
  out.sample(self_metric(kHttpConnections), {}, ld(http.open));
  out.sample(self_metric(kHttpConnectionLimit), {}, static_cast<double>(http.limit));
  out.sample(self_metric(kHttpConnectionsTotal), {}, ld(http.connections));
  out.sample(self_metric(kHttpIncompleteRequests), {}, ld(http.incomplete));
  out.sample(self_metric(kHttpConnectionsAtLimit), {}, ld(http.at_limit));
  impl_->requests.describe(out, impl_->options.path);
  impl_->render_text.describe(out, self_metric(kHttpRenderSeconds), {{"step", "text"}});
  impl_->render_gzip.describe(out, self_metric(kHttpRenderSeconds), {{"step", "gzip"}});
}

}  // namespace ringpipe::exporters
