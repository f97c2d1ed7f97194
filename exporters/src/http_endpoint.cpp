#include "http_endpoint.hpp"

#include <CivetServer.h>
#include <civetweb.h>
#include <crypt.h>
#include <strings.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/text_serializer.h>

#include "gzip_encoding.hpp"
#include "ringpipe/common/log.hpp"
#include "tls_shim.hpp"

namespace ringpipe::exporters {
namespace {

thread_local bool t_request_seen = false;

// The request a worker thread is answering: the status it sent and the body
// bytes written so far, counted by end_request (RequestCounters). Reset at
// every connection and request.
thread_local int t_status = 0;
thread_local std::uint64_t t_body_bytes = 0;

// Writes `body` until done or the client is gone; counts what was written.
void write_body(mg_connection* conn, std::string_view body) {
  for (std::size_t at = 0; at < body.size();) {
    const int n = mg_write(conn, body.data() + at, body.size() - at);
    if (n <= 0) return;  // the client left or was too slow (request_timeout_ms)
    at += static_cast<std::size_t>(n);
    t_body_bytes += static_cast<std::uint64_t>(n);
  }
}

// A short text/plain answer; `extra_headers` are whole "Name: value\r\n" lines.
int answer(mg_connection* conn, int status, const char* reason, std::string_view body, const char* extra_headers = "") {
  t_status = status;
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\n%sContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
            "Connection: close\r\n\r\n",
            status, reason, extra_headers, body.size());
  write_body(conn, body);
  return status;
}

// Every Accept-Encoding field of the request as one list (a client may send
// the list over several fields).
std::string accept_encoding(const mg_connection* conn) {
  std::string out;
  const mg_request_info* ri = mg_get_request_info(conn);
  if (ri == nullptr) return out;
  for (int i = 0; i < ri->num_headers && i < static_cast<int>(std::size(ri->http_headers)); ++i) {
    const mg_header& h = ri->http_headers[i];
    if (h.name == nullptr || h.value == nullptr || ::strcasecmp(h.name, "Accept-Encoding") != 0) continue;
    if (!out.empty()) out += ',';
    out += h.value;
  }
  return out;
}

// One rendering of the page: its text and its gzip encoding, made at most
// once, when the first scrape that accepts gzip asks for it (scrapes sharing
// the rendering that want it meanwhile wait for that one compression).
// Thread-safe.
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

// One rendering of the page, shared by every scrape that arrives while it is
// being made: at most one render runs, the others wait for it (bounded) and
// send the same page, so a page is at most one render's duration old.
// Renders run on one thread of the cache's own, not on the worker that asked:
// a page of 100k series allocates some 100 MB of short-lived objects, and on
// one thread they reuse one warm malloc arena, where each of 1,024 workers
// would fault in an arena of its own (collect took 30-40 % longer so).
// Thread-safe.
class PageCache {
 public:
  using Page = std::shared_ptr<const RenderedPage>;
  explicit PageCache(std::function<std::string()> render) : render_(std::move(render)), thread_([this] { run(); }) {}
  PageCache(const PageCache&) = delete;
  PageCache& operator=(const PageCache&) = delete;
  ~PageCache() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // A page rendered after this call began, or the one being rendered when it
  // began; nullptr when that render failed, or when a render another scrape
  // started did not finish within `wait_limit`. The scrape that starts a
  // render waits for it without a limit, as if it rendered itself.
  Page get(std::chrono::milliseconds wait_limit) {
    std::unique_lock lock(mu_);
    const std::uint64_t gen = generation_;
    const auto done = [&] { return generation_ != gen || stop_; };
    if (rendering_ || requested_) {
      if (!cv_.wait_for(lock, wait_limit, done) || stop_) return nullptr;
      ++shared_;
      return last_;
    }
    requested_ = true;
    cv_.notify_all();
    cv_.wait(lock, done);
    return stop_ ? nullptr : last_;
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return requested_ || stop_; });
      if (stop_) return;
      requested_ = false;
      rendering_ = true;
      lock.unlock();
      Page page;
      try {
        page = std::make_shared<const RenderedPage>(render_());
      } catch (...) {
        page = nullptr;
      }
      lock.lock();
      last_ = page;
      rendering_ = false;
      ++generation_;
      cv_.notify_all();
    }
  }

  std::function<std::string()> render_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;  // a scrape asked; the render thread has not begun
  bool rendering_ = false;
  bool stop_ = false;
  std::uint64_t generation_ = 0;  // renders finished
  std::uint64_t shared_ = 0;      // pages handed to a scrape that waited
  Page last_;
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
// bytes sent, by path (after compression; civetweb's own answers, such as a
// 404, are counted without their bytes). Paths other than the three served
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
  auto data = std::make_unique<crypt_data>();  // ~32 KiB: not on a worker's stack
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

}  // namespace

std::string PageSource::render_page() { return prometheus::TextSerializer().Serialize(Collect()); }

struct HttpEndpoint::Impl : CivetHandler {
  Impl(const PrometheusExporterOptions& o, PageSource& s) : options(o), source(s) {}

  PrometheusExporterOptions options;
  PageSource& source;
  HttpCounters http;
  RequestCounters requests;
  DurationHistogram render_text;  // Collect and serialization of one page
  DurationHistogram render_gzip;  // compression of one page
  PageCache pages{[this] { return render(); }};
  mutable BcryptCache bcrypt_ok;  // authorized() is const; the cache is its own lock
  std::atomic<std::uint64_t> pages_served{0};
  std::unique_ptr<CivetServer> server;
  int port = 0;

  // The page as Prometheus' text format, rendered once for concurrent scrapes.
  [[nodiscard]] PageCache::Page page() { return pages.get(std::chrono::seconds(30)); }

  std::string render() {
    const std::int64_t t0 = monotonic_ns();
    std::string text = source.render_page();
    render_text.observe(static_cast<double>(monotonic_ns() - t0) * 1e-9);
    return text;
  }

  // The gzip encoding of a rendering, made once per rendering (RenderedPage).
  std::optional<std::string> compress(const std::string& text) {
    const std::int64_t t0 = monotonic_ns();
    std::optional<std::string> gz = gzip_compress(text, kPageGzipLevel);
    render_gzip.observe(static_cast<double>(monotonic_ns() - t0) * 1e-9);
    if (!gz) spdlog::warn("prometheus exporter: gzip of a {}-byte page failed; answered uncompressed", text.size());
    return gz;
  }

  bool authorized(mg_connection* conn) const {
    if (options.basic_auth_users.empty()) return true;
    const char* header = mg_get_header(conn, "Authorization");
    if (header == nullptr) return false;
    std::string_view h(header);
    constexpr std::string_view kBasic = "Basic ";
    if (h.substr(0, kBasic.size()) != kBasic) return false;
    const std::optional<std::string> decoded = base64_decode(h.substr(kBasic.size()));
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

  // GET <path>, on a civetweb worker thread.
  bool handleGet(CivetServer*, mg_connection* conn) override {
    try {
      if (!authorized(conn)) {
        answer(conn, 401, "Unauthorized", "Unauthorized\n", "WWW-Authenticate: Basic realm=\"ringpipe\"\r\n");
        return true;
      }
      const PageCache::Page p = page();
      if (!p) {
        answer(conn, 503, "Service Unavailable", "The page could not be rendered in time, retry.\n");
        return true;
      }
      const std::string* body = &p->text();
      const char* encoding = "";
      if (accepts_gzip(accept_encoding(conn))) {
        if (const std::string* gz = p->gzip([this](const std::string& text) { return compress(text); })) {
          body = gz;
          encoding = "Content-Encoding: gzip\r\n";
        }
      }
      t_status = 200;
      mg_printf(conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n%s"
                "Vary: Accept-Encoding\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                encoding, body->size());
      const std::uint64_t before = t_body_bytes;
      write_body(conn, *body);
      if (t_body_bytes - before != body->size()) return true;
      pages_served.fetch_add(1, std::memory_order_relaxed);
      source.page_served();
    } catch (...) {
      source.serve_failed();
    }
    return true;
  }

  ~Impl() override {
    server.reset();  // joins the server threads: no request runs after this
  }
};

namespace {

HttpEndpoint::Impl* impl_of(const mg_connection* conn) {
  const mg_context* ctx = mg_get_context(conn);
  if (ctx == nullptr) return nullptr;
  const auto* server = static_cast<const CivetServer*>(mg_get_user_data(ctx));
  if (server == nullptr) return nullptr;
  return static_cast<HttpEndpoint::Impl*>(const_cast<void*>(server->getUserContext()));
}

int begin_request_hook(mg_connection* conn) {
  t_request_seen = true;
  t_status = 0;
  t_body_bytes = 0;
  const mg_request_info* ri = mg_get_request_info(conn);
  if (ri == nullptr || ri->local_uri == nullptr) return 0;
  const std::string_view uri(ri->local_uri);
  const bool healthy = uri == "/-/healthy";
  if (!healthy && uri != "/-/ready") return 0;
  if (healthy) return answer(conn, 200, "OK", "OK\n");
  const HttpEndpoint::Impl* impl = impl_of(conn);
  if (impl != nullptr && impl->source.ready()) return answer(conn, 200, "OK", "OK\n");
  return answer(conn, 503, "Service Unavailable", "Not ready: waiting for a complete snapshot.\n");
}

// Counts every request civetweb read whole, once it is answered: with the
// status we sent, or civetweb's own (404, 405, ...).
void end_request_hook(const mg_connection* conn, int reply_status_code) {
  HttpEndpoint::Impl* impl = impl_of(conn);
  const mg_request_info* ri = mg_get_request_info(conn);
  if (impl != nullptr) {
    const std::string_view uri = ri != nullptr && ri->local_uri != nullptr ? ri->local_uri : "";
    RequestCounters::Path path = RequestCounters::kOther;
    if (uri == impl->options.path) {
      path = RequestCounters::kMetrics;
    } else if (uri == "/-/healthy") {
      path = RequestCounters::kHealthy;
    } else if (uri == "/-/ready") {
      path = RequestCounters::kReady;
    }
    try {
      impl->requests.count(path, t_status != 0 ? t_status : reply_status_code, t_body_bytes);
    } catch (...) {
      // no memory for a new series, or the lock failed: leave it uncounted rather than unwind into C
    }
  }
  t_status = 0;
  t_body_bytes = 0;
}

int init_connection_hook(const mg_connection* conn, void**) {
  t_request_seen = false;
  t_status = 0;
  t_body_bytes = 0;
  if (HttpEndpoint::Impl* impl = impl_of(conn)) {
    impl->http.connections.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t open = impl->http.open.fetch_add(1, std::memory_order_relaxed) + 1;
    if (open >= impl->http.limit) impl->http.at_limit.fetch_add(1, std::memory_order_relaxed);
  }
  return 0;
}

void connection_close_hook(const mg_connection* conn) {
  if (HttpEndpoint::Impl* impl = impl_of(conn)) {
    if (!t_request_seen) impl->http.incomplete.fetch_add(1, std::memory_order_relaxed);
    impl->http.open.fetch_sub(1, std::memory_order_relaxed);
  }
  t_request_seen = false;
}

}  // namespace

Result<std::pair<std::string, std::string>> split_listen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) return invalid("listen: " + listen + ": expected host:port");
  std::string host = listen.substr(0, colon);
  std::string port = listen.substr(colon + 1);
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5) {
    return invalid("listen: " + listen + ": bad port");
  }
  if (host.empty()) host = "0.0.0.0";
  if (host.front() == '[' || host.find(':') != std::string::npos) {
    // mg_check_feature(8): IPv6; Debian 12's civetweb is built without it.
    if (mg_check_feature(8) == 0) {
      return invalid("listen: " + listen + ": IPv6 addresses are not supported (civetweb built without IPv6)");
    }
    if (host.front() != '[') host = "[" + host + "]";
  }
  return std::make_pair(host, port);
}

HttpEndpoint::HttpEndpoint(const PrometheusExporterOptions& options, PageSource& source)
    : impl_(std::make_unique<Impl>(options, source)) {}

HttpEndpoint::~HttpEndpoint() = default;

Status HttpEndpoint::listen(const std::string& host, const std::string& port) {
  const std::string what = "prometheus exporter: ";
  const PrometheusExporterOptions& options = impl_->options;
  std::string ports = host + ":" + port;
  // civetweb holds a worker thread per connection, from accept until the
  // request is answered or request_timeout_ms passes without a whole header
  // (that timeout also bounds each write of the answer). Accepted connections
  // beyond the workers wait in connection_queue, then in the listen backlog.
  const std::size_t workers = std::clamp<std::size_t>(options.max_connections, 4, 16384);
  const auto timeout_ms = std::max<std::int64_t>(100, options.header_timeout.count());
  impl_->http.limit = workers;
  std::vector<std::string> civet{"num_threads",        std::to_string(workers),
                                 "connection_queue",   std::to_string(workers),
                                 "listen_backlog",     std::to_string(std::min<std::size_t>(workers, 4096)),
                                 "request_timeout_ms", std::to_string(timeout_ms),
                                 "enable_keep_alive",  "no"};
  std::string temp_pem;
  if (options.tls) {
    if (options.tls->cert_file.empty()) return invalid(what + "tls: cert_file is required");
    if (auto usable = civetweb_tls_usable(); !usable) {
      return tl::unexpected(Error{usable.error().code, what + usable.error().context});
    }
    auto pem = combined_pem(*options.tls, &temp_pem);
    if (!pem) return tl::unexpected(Error{pem.error().code, what + pem.error().context});
    ports += "s";
    civet.insert(civet.end(), {"ssl_certificate", *pem});
    // civetweb's ssl_protocol_version: 2 = TLS 1.0 and later ... 5 = TLS 1.3 only.
    static constexpr std::pair<std::string_view, std::string_view> kMinVersions[] = {
        {"TLS10", "2"}, {"TLS11", "3"}, {"TLS12", "4"}, {"TLS13", "5"}};
    for (const auto& [name, level] : kMinVersions) {
      if (options.tls->min_version == name) civet.insert(civet.end(), {"ssl_protocol_version", std::string(level)});
    }
    if (!options.tls->ca_file.empty()) {
      civet.insert(civet.end(), {"ssl_ca_file", options.tls->ca_file, "ssl_verify_peer", "yes"});
    }
  }
  civet.insert(civet.begin(), {"listening_ports", ports});
  static const CivetCallbacks callbacks = [] {
    CivetCallbacks cb;
    cb.begin_request = &begin_request_hook;
    cb.end_request = &end_request_hook;
    cb.init_connection = &init_connection_hook;
    cb.connection_close = &connection_close_hook;
    cb.log_message = [](const mg_connection*, const char* message) {
      spdlog::warn("prometheus exporter: http server: {}", message);
      return 1;
    };
    return cb;
  }();
  try {
    impl_->server = std::make_unique<CivetServer>(civet, &callbacks, impl_.get());
  } catch (const std::exception& e) {
    if (!temp_pem.empty()) std::filesystem::remove(temp_pem);
    return make_error(std::errc::address_not_available, what + "listen " + ports + ": " + e.what());
  }
  if (!temp_pem.empty()) std::filesystem::remove(temp_pem);  // read at server start
  try {
    impl_->server->addHandler(options.path, static_cast<CivetHandler*>(impl_.get()));
    const std::vector<int> bound = impl_->server->getListeningPorts();
    if (bound.empty()) return make_error(std::errc::address_not_available, what + "listen " + ports + ": no port");
    impl_->port = bound.front();
  } catch (const std::exception& e) {
    return make_error(std::errc::io_error, what + "register endpoint: " + e.what());
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
