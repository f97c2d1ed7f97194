#pragma once
// Helpers for the end-to-end tests of the real `ringpipe` binary: starting it
// with captured output, bounded waits for exit and for /metrics, free
// loopback ports, a TCP StatsD sender, and readers that total what reached a
// ring or what /metrics serves. Single-threaded
// objects unless stated.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "loopback.hpp"
#include "prometheus_server.hpp"
#include "ringpipe/metric/metric_record.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/sample/sample_batch.hpp"
#include "test_support.hpp"

namespace ringpipe::apps::e2e {

inline const char* binary() { return RINGPIPE_BINARY; }

// Sends `text` as one UDP datagram to 127.0.0.1:port; false unless all of it went.
inline bool send_udp(std::uint16_t port, const std::string& text) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const sockaddr_in a = testing::loopback_address(port);
  const auto n = ::sendto(fd, text.data(), text.size(), 0, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  ::close(fd);
  return n == static_cast<ssize_t>(text.size());
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// A pipeline file's text, run in `dir`: two 4 MiB block rings, raw and
// metrics, then `sections` (the sources, processors and exporters, as YAML).
inline std::string two_ring_pipeline(const testing::ScratchDir& dir, const std::string& sections) {
  return "pipeline: t\nrun_dir: " + dir.path().string() +
         "\nrings:\n  raw: {size: 4MiB, lanes: 4, overflow: block}\n"
         "  metrics: {size: 4MiB, lanes: 4, overflow: block}\n" +
         sections;
}

// Starts `prometheus` as a remote_write receiver that scrapes nothing
// (scrape_interval 1h), with native histograms on when asked.
inline bool start_receiver(exporters::testing::PrometheusServer& prometheus, bool native_histograms = false) {
  prometheus.set_config("global:\n  scrape_interval: 1h\n");
  if (native_histograms) prometheus.add_flag("--enable-feature=native-histograms");
  return prometheus.start();
}

// A child running the binary; stdout and stderr go to files. Killed (SIGKILL)
// and reaped on destruction if still running.
class Proc {
 public:
  Proc(const std::vector<std::string>& args, const std::string& out, const std::string& err) : out_(out), err_(err) {
    std::vector<std::string> argv_text = {binary()};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      // A test that crashes takes its ringpipe (and so the components) with it.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(o, 1);
      ::dup2(e, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~Proc() {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
  }
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  void signal(int sig) const { ::kill(pid_, sig); }
  // The exit code (128 + signal when killed), or nullopt after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    if (status_) return status_;
    const auto until = std::chrono::steady_clock::now() + timeout;
    do {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return status_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    } while (std::chrono::steady_clock::now() < until);
    return std::nullopt;
  }
  [[nodiscard]] std::string out() const { return read_text(out_); }
  [[nodiscard]] std::string err() const { return read_text(err_); }

 private:
  std::string out_, err_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs the binary to completion (bounded by `timeout`; -1 when it had to be killed).
inline RunResult run(const testing::ScratchDir& dir, const std::vector<std::string>& args,
                     std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  static int n = 0;
  const std::string base = dir.file("run" + std::to_string(n++));
  Proc p(args, base + ".out", base + ".err");
  const auto code = p.wait(timeout);
  RunResult r;
  r.code = code ? *code : -1;
  r.out = p.out();
  r.err = p.err();
  return r;
}

using ringpipe::testing::free_tcp_port;

// Sends StatsD lines over TCP; reconnects (bounded) when the source restarts.
class TcpSender {
 public:
  explicit TcpSender(std::uint16_t port) : port_(port) {}
  ~TcpSender() { close(); }
  // True when the connection exists (retries up to `timeout`).
  bool connect(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (fd_ < 0) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port_);
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        fd_ = fd;
        break;
      }
      ::close(fd);
      if (std::chrono::steady_clock::now() >= until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }
  // Sends the whole text; false when the connection broke (then closed).
  bool send(const std::string& text) {
    if (!connect()) return false;
    std::size_t off = 0;
    while (off < text.size()) {
      const ssize_t n = ::send(fd_, text.data() + off, text.size() - off, MSG_NOSIGNAL);
      if (n <= 0) {
        close();
        return false;
      }
      off += static_cast<std::size_t>(n);
    }
    return true;
  }
  // Half-closes and waits (bounded) for the server to close: everything sent was read.
  void finish() {
    if (fd_ < 0) return;
    ::shutdown(fd_, SHUT_WR);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[64];
    while (::recv(fd_, buf, sizeof buf, 0) > 0) {
    }
    close();
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  std::uint16_t port_;
  int fd_ = -1;
};

inline std::string lines(const std::string& line, std::size_t n) {
  std::string out;
  out.reserve((line.size() + 1) * n);
  for (std::size_t i = 0; i < n; ++i) out += line + "\n";
  return out;
}

// The sum of every series of `name` in a Prometheus text exposition, nullopt
// when it has none.
inline std::optional<double> exposition_sum(std::string_view body, std::string_view name) {
  std::optional<double> sum;
  std::size_t at = 0;
  while (at < body.size()) {
    const std::size_t eol = std::min(body.find('\n', at), body.size());
    const std::string_view line = body.substr(at, eol - at);
    at = eol + 1;
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    if (line[name.size()] != ' ' && line[name.size()] != '{') continue;
    sum = sum.value_or(0) + std::stod(std::string(line.substr(line.rfind(' ') + 1)));
  }
  return sum;
}

// Whether GET /metrics on 127.0.0.1:web answers 200 within `timeout`: the
// binary started and its exporter serves.
inline bool metrics_answer(std::uint16_t web, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  return testing::wait_until(
      [&] { return exporters::testing::http_get(web, "/metrics", "", std::chrono::seconds(1)).first == 200; }, timeout);
}

// The sum of every series of `name` on /metrics at 127.0.0.1:web, nullopt
// when it does not answer 200 or has no such series; the page in `body`.
inline std::optional<double> scraped_sum(std::uint16_t web, std::string_view name,
                                         std::chrono::milliseconds timeout = std::chrono::seconds(2),
                                         std::string* body = nullptr) {
  const auto [code, text] = exporters::testing::http_get(web, "/metrics", "", timeout);
  if (code != 200) return std::nullopt;
  if (body != nullptr) *body = text;
  return exposition_sum(text, name);
}

// Applies a metric ring's records (metric/FORMAT.md) from a non-durable
// reader: the latest value per series and processor instance.
class MetricTotals {
 public:
  static std::optional<MetricTotals> attach(const std::string& ring_path) {
    auto r = ring::Ring::open(ring_path);
    if (!r) return std::nullopt;
    MetricTotals t;
    t.ring_ = std::make_unique<ring::Ring>(std::move(*r));
    ring::ReaderOptions o;
    o.start = ring::StartAt::kOldest;
    o.durable = false;
    auto reader = ring::Reader::attach(*t.ring_, "test-metrics-" + std::to_string(::getpid()), o);
    if (!reader) return std::nullopt;
    t.reader_ = std::make_unique<ring::Reader>(std::move(*reader));
    return t;
  }
  void poll() {
    reader_->poll([&](const ring::RecordView& v) {
      if (v.type != metric::kMetricBatchRecord) return;
      metric::MetricBatchReader r(v.payload);
      while (auto e = r.next()) {
        if (e->kind != metric::EntryKind::kSeries) continue;
        values_[{r.header().instance_id, e->key}] = {std::string(e->name), e->value(0)};
      }
    });
  }
  // Sum over processor instances of the latest value of every series named `name`.
  double total(const std::string& name) {
    poll();
    double sum = 0;
    for (const auto& [k, v] : values_)
      if (v.first == name) sum += v.second;
    return sum;
  }
  std::size_t instances() const {
    std::map<std::uint64_t, int> ids;
    for (const auto& [k, v] : values_) ids[k.first] = 1;
    return ids.size();
  }
  bool lapped() const { return reader_->stats().lapped_records > 0; }

 private:
  MetricTotals() = default;
  std::unique_ptr<ring::Ring> ring_;
  std::unique_ptr<ring::Reader> reader_;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::pair<std::string, double>> values_;
};

// Counts the samples of one name that reached a sample ring, with a durable
// reader polled by its own thread: under `block` producers wait for it, so it
// sees every record the ring accepted. count() is safe from any thread.
class SampleAudit {
 public:
  static std::unique_ptr<SampleAudit> attach(const std::string& ring_path, std::string name) {
    auto r = ring::Ring::open(ring_path);
    if (!r) return nullptr;
    auto a = std::unique_ptr<SampleAudit>(new SampleAudit);
    a->name_ = std::move(name);
    a->ring_ = std::make_unique<ring::Ring>(std::move(*r));
    ring::ReaderOptions o;
    o.start = ring::StartAt::kOldest;
    o.durable = true;
    auto reader = ring::Reader::attach(*a->ring_, "test-audit", o);
    if (!reader) return nullptr;
    a->reader_ = std::make_unique<ring::Reader>(std::move(*reader));
    a->thread_ = std::thread([p = a.get()] { p->loop(); });
    return a;
  }
  ~SampleAudit() {
    stop_ = true;
    thread_.join();
  }
  [[nodiscard]] std::uint64_t count() const { return count_.load(); }
  [[nodiscard]] bool lapped() const { return lapped_.load(); }

 private:
  SampleAudit() = default;
  void loop() {
    while (!stop_.load()) {
      const std::size_t n = reader_->poll([&](const ring::RecordView& v) {
        if (v.type != sample::kSampleBatchRecord) return;
        sample::BatchReader r(v.payload);
        std::uint64_t c = 0;
        while (auto s = r.next())
          if (s->name == name_) c += static_cast<std::uint64_t>(s->value / s->sample_rate);
        count_ += c;
      });
      if (n == 0) (void)reader_->wait(std::chrono::milliseconds(10));
      lapped_ = reader_->stats().lapped_records > 0;
    }
  }
  std::string name_;
  std::unique_ptr<ring::Ring> ring_;
  std::unique_ptr<ring::Reader> reader_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<bool> lapped_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace ringpipe::apps::e2e
