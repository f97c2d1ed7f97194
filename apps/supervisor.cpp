#include "supervisor.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "components.hpp"
#include "reload.hpp"
#include "ringpipe/common/log.hpp"
#include "ringpipe/common/unique_fd.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/stats/stats_segment.hpp"
#include "status_file.hpp"

namespace ringpipe::apps {
namespace {

using Clock = std::chrono::steady_clock;

// What one stats segment takes in the run directory (320 KiB, rounded up).
constexpr std::uint64_t kStatsSegmentBytesEstimate = std::uint64_t{384} << 10;

sigset_t supervisor_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    if (code == kExitConfig) return "exit status 78 (bad configuration)";
    return fmt::format("exit status {}", code);
  }
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return fmt::format("killed by signal {} ({}){}", sig, ::strsignal(sig), WCOREDUMP(status) ? ", core dumped" : "");
  }
  return fmt::format("wait status {:#x}", status);
}

std::int64_t encode_exit(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return 255;
}

// Whether two versions of a source listen on the same sockets (where in the
// file the addresses are written does not matter).
bool same_listeners(const config::SourceConfig& a, const config::SourceConfig& b) {
  if (a.type != b.type || a.udp_sockets != b.udp_sockets || a.listen.size() != b.listen.size()) return false;
  for (std::size_t i = 0; i < a.listen.size(); ++i)
    if (a.listen[i].to_string() != b.listen[i].to_string()) return false;
  return true;
}

// `<run_dir>/<pipeline>/supervisor.lock`: a POSIX write lock held for the
// supervisor's life (not inherited by its children; released by the kernel
// when it dies), so a second supervisor of the same pipeline is refused at
// once, told the pid of the live one.
Result<UniqueFd> lock_pipeline(const config::PipelineConfig& p) {
  const std::string dir = p.run_dir + "/" + p.pipeline;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return tl::unexpected(Error{ec, "pipeline " + p.pipeline + ": create " + dir});
  const std::string path = dir + "/supervisor.lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return errno_error("pipeline " + p.pipeline + ": open " + path);
  struct flock lk {};
  lk.l_type = F_WRLCK;
  lk.l_whence = SEEK_SET;
  if (::fcntl(fd.get(), F_SETLK, &lk) == 0) return fd;
  if (errno != EACCES && errno != EAGAIN) return errno_error("pipeline " + p.pipeline + ": lock " + path);
  struct flock holder {};
  holder.l_type = F_WRLCK;
  holder.l_whence = SEEK_SET;
  const bool known = ::fcntl(fd.get(), F_GETLK, &holder) == 0 && holder.l_type != F_UNLCK;
  return make_error(std::errc::device_or_resource_busy,
                    fmt::format("pipeline {} in {} is already run by a live supervisor{}; give this instance a "
                                "pipeline of its own with `ringpipe run --pipeline NAME` (or `pipeline:` in its "
                                "file, or other --statsd.listen-* ports), or stop that one first",
                                p.pipeline, p.run_dir, known ? fmt::format(", pid {}", holder.l_pid) : ""));
}

// Removes what a previous run left in the pipeline's directory (rings, stats
// segments, status, the processors' state) but the lock; returns the count.
std::size_t remove_previous_run(const config::PipelineConfig& p) {
  std::size_t removed = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(p.run_dir + "/" + p.pipeline, ec)) {
    if (e.path().filename() == "supervisor.lock") continue;
    std::error_code rm;
    removed += std::filesystem::remove_all(e.path(), rm) > 0 ? 1 : 0;
  }
  return removed;
}

// Room in the run directory's file system for the rings not there yet and the
// stats segments: a ring that cannot be created fails the start here, with
// what to do, instead of "No space left on device" half way through.
Status check_free_space(const config::PipelineConfig& p) {
  std::uint64_t need = 0;
  for (const config::RingConfig& r : p.rings)
    if (!std::filesystem::exists(p.ring_path(r.name))) need += r.size_bytes;
  if (need == 0) return {};
  need += (pipeline_components(p).size() + 1) * kStatsSegmentBytesEstimate;
  struct statvfs fs {};
  std::string dir = p.run_dir + "/" + p.pipeline;
  if (::statvfs(dir.c_str(), &fs) != 0) return {};  // created just before; the rings report their own failure
  const std::uint64_t free = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  if (free >= need) return {};
  return make_error(
      std::errc::no_space_on_device,
      fmt::format("run dir {} has {} free, and pipeline {} needs {} for its rings and stats (plus room for "
                  "the processors' state): give it more room (Docker: --shm-size=128m; Kubernetes: an "
                  "emptyDir with medium: Memory), point --run-dir at a larger tmpfs, or make the rings "
                  "smaller (rings: NAME: size: in a pipeline file)",
                  p.run_dir, format_bytes(free), p.pipeline, format_bytes(need)));
}

// Whether the exporter's HTTP port is free now: a taken /metrics port is
// refused at start instead of a crash loop of the exporter. An empty host is
// probed as the exporter listens there: IPv6 taking IPv4 too, or IPv4 alone
// on a host without IPv6.
Status probe_http_port(const config::ExporterConfig& e) {
  if (e.type != config::ExporterType::kPrometheus) return {};
  const config::ListenAddress& l = e.prometheus.listen;
  const bool v6_literal = l.host.find(':') != std::string::npos;
  const std::string what =
      fmt::format("exporter {}: listen {}:{}", e.name, v6_literal ? "[" + l.host + "]" : l.host, l.port);
  const int one = 1;
  const int zero = 0;
  auto bind_errno = [&](const sockaddr* a, socklen_t len, bool dual_stack) -> std::optional<int> {
    UniqueFd fd(::socket(a->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return std::nullopt;
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (dual_stack) (void)::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (::bind(fd.get(), a, len) == 0) return 0;
    return errno;
  };
  std::optional<int> bound;  // bind's errno (0: bound), nullopt: no socket of that family
  if (l.host.empty()) {
    sockaddr_in6 any6{};
    any6.sin6_family = AF_INET6;
    any6.sin6_port = htons(l.port);
    any6.sin6_addr = in6addr_any;
    bound = bind_errno(reinterpret_cast<const sockaddr*>(&any6), sizeof any6, true);
    if (!bound) {  // no IPv6 here: the exporter falls back to 0.0.0.0
      sockaddr_in any4{};
      any4.sin_family = AF_INET;
      any4.sin_port = htons(l.port);
      any4.sin_addr.s_addr = htonl(INADDR_ANY);
      bound = bind_errno(reinterpret_cast<const sockaddr*>(&any4), sizeof any4, false);
    }
  } else {
    addrinfo hints{};
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(l.port);
    if (::getaddrinfo(l.host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr)
      return {};  // the exporter reports a name it cannot resolve itself
    bound = bind_errno(res->ai_addr, res->ai_addrlen, false);
    ::freeaddrinfo(res);
  }
  if (bound && *bound == EADDRINUSE)
    return tl::unexpected(Error{std::error_code(*bound, std::system_category()), what + ": bind"});
  return {};
}

// The supervisor's own stats segment, beside the components' ones.
constexpr std::string_view kSupervisorStatsName = "supervisor";

std::int64_t ms_of(Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

struct Child {
  ComponentInfo info;
  pid_t pid = 0;
  ComponentState state = ComponentState::kStopped;
  Clock::time_point started{};
  std::int64_t started_ns = 0;  // realtime
  std::uint32_t starts = 0;
  std::uint32_t quick_failures = 0;
  std::chrono::milliseconds backoff{0};
  Clock::time_point next_start{};
  std::int64_t next_start_ns = 0;
  std::int64_t last_exit = kNoExit;
  std::int64_t last_exit_ns = 0;
  bool term_sent = false;
  Clock::time_point term_deadline{};  // SIGKILL after this
  bool restart_after_stop = false;    // reload: start again (with the new config) once it exits
  bool remove_after_stop = false;     // reload: gone from the pipeline
};

}  // namespace

struct Supervisor::Impl {
  SupervisorOptions options;
  config::PipelineConfig pipeline;
  std::map<std::string, ring::Ring> rings;
  std::vector<Child> children;  // pipeline order
  UniqueFd lock;                // supervisor.lock, held while this supervisor lives
  StatusFile status;
  UniqueFd signal_fd;
  SupervisorState state = SupervisorState::kStarting;
  std::int64_t started_ns = realtime_ns();
  bool stopping = false;
  bool drain_skipped = false;
  Clock::time_point drain_deadline{};
  int exit_code = kExitOk;
  Clock::time_point last_status_write{};
  // `<run_dir>/<pipeline>/supervisor.stats`: supervisor_component_restarts_total{child}.
  std::unique_ptr<stats::StatsSegment> segment;
  std::map<std::string, std::atomic<std::uint64_t>*> restart_cells;
  // Every listening source's sockets, bound before anything starts and held
  // here for as long as the source is in the pipeline: each start of the
  // source inherits them, so its kernel queue survives a crash and a restart
  // never races a rebind.
  std::map<std::string, std::vector<ingest::ListenSocket>> sockets;

  Impl(SupervisorOptions o, config::PipelineConfig p, UniqueFd l, StatusFile s)
      : options(std::move(o)), pipeline(std::move(p)), lock(std::move(l)), status(std::move(s)) {}

  bool disabled(std::string_view name) const {
    return std::find(options.disabled.begin(), options.disabled.end(), name) != options.disabled.end();
  }

  Child* find_child(std::string_view name) {
    for (auto& c : children)
      if (c.info.name == name) return &c;
    return nullptr;
  }

  void write_status() {
    SupervisorStatus s;
    s.pipeline = pipeline.pipeline;
    s.state = state;
    s.pid = static_cast<std::uint32_t>(::getpid());
    s.started_ns = started_ns;
    s.updated_ns = realtime_ns();
    for (const Child& c : children) {
      ComponentStatus cs;
      cs.name = c.info.name;
      cs.kind = c.info.kind;
      cs.state = c.state;
      cs.pid = static_cast<std::uint32_t>(c.pid);
      cs.restarts = c.starts > 0 ? c.starts - 1 : 0;
      cs.quick_failures = c.quick_failures;
      cs.started_ns = c.started_ns;
      cs.last_exit = c.last_exit;
      cs.last_exit_ns = c.last_exit_ns;
      cs.next_start_ns = c.state == ComponentState::kBackoff ? c.next_start_ns : 0;
      s.components.push_back(std::move(cs));
    }
    status.write(s);
    last_status_write = Clock::now();
    if (segment) segment->heartbeat();
  }

  void open_segment() {
    if (find_child(kSupervisorStatsName)) {
      spdlog::warn("a component is named {}: the supervisor publishes no stats segment", kSupervisorStatsName);
      return;
    }
    auto seg = stats::StatsSegment::create(stats_segment_path(pipeline, kSupervisorStatsName), kSupervisorStatsName,
                                           "supervisor");
    if (!seg) {
      spdlog::warn("supervisor stats segment: {} (restarts are in the status file only)", seg.error().message());
      return;
    }
    seg->reset_gauges();
    segment = std::make_unique<stats::StatsSegment>(std::move(*seg));
    // Published at 0 before any restart, so the first one is an increase.
    for (const Child& c : children) (void)restart_cell(c);
  }

  // The component's restart counter (label `child`: the exporter adds `component`
  // = "supervisor"); registered on first use, null without a segment.
  std::atomic<std::uint64_t>* restart_cell(const Child& c) {
    if (!segment) return nullptr;
    auto it = restart_cells.find(c.info.name);
    if (it == restart_cells.end()) {
      auto cell = segment->register_counter("supervisor_component_restarts_total",
                                            "Starts of a component after it died (crash, kill, exit).",
                                            {{"child", c.info.name}});
      if (!cell) spdlog::warn("supervisor stats segment: {}", cell.error().message());
      it = restart_cells.emplace(c.info.name, cell ? *cell : nullptr).first;
    }
    return it->second;
  }

  // Counts a start after the component died (not a reload's restart).
  void count_restart(const Child& c) {
    if (auto* cell = restart_cell(c)) cell->fetch_add(1, std::memory_order_relaxed);
  }

  // Opens every ring of `p` not open yet; a ring whose geometry changed is refused.
  Status open_rings_of(const config::PipelineConfig& p, std::map<std::string, ring::Ring>& into) {
    for (const config::RingConfig& r : p.rings) {
      auto ring = ring::Ring::open_or_create(p.ring_path(r.name), ring_options(p, r));
      if (!ring) return tl::unexpected(Error{ring.error().code, "open ring " + r.name + ": " + ring.error().context});
      into.insert_or_assign(r.name, std::move(*ring));
    }
    return {};
  }

  // Durable readers exist before any producer writes, so the first samples
  // wait for their reader (block rings) instead of passing it by.
  void register_readers(const config::PipelineConfig& p, const std::map<std::string, ring::Ring>& open) {
    for (const ComponentInfo& c : pipeline_components(p)) {
      if (c.kind == ComponentKind::kSource || disabled(c.name)) continue;
      for (const std::string& input : c.inputs) {
        auto it = open.find(input);
        if (it == open.end()) continue;
        ring::ReaderOptions ro;
        ro.start = ring::StartAt::kOldest;
        ro.durable = true;
        // Fails harmlessly when the component already runs and holds the name.
        auto reader = ring::Reader::attach(it->second, c.reader, ro);
        if (reader) spdlog::debug("ring {}: reader {} registered", input, c.reader);
      }
    }
  }

  // Binds the sockets of every listening source of `p` that has none yet, or
  // whose addresses changed; all or nothing: on failure `sockets` is unchanged.
  Status bind_sockets(const config::PipelineConfig& p) {
    std::map<std::string, std::vector<ingest::ListenSocket>> bound;
    for (const config::SourceConfig& s : p.sources) {
      if (!listening_source(s) || disabled(s.name)) continue;
      const auto held = sockets.find(s.name);
      const auto old = std::find_if(pipeline.sources.begin(), pipeline.sources.end(),
                                    [&](const config::SourceConfig& o) { return o.name == s.name; });
      if (held != sockets.end() && old != pipeline.sources.end() && same_listeners(*old, s)) continue;
      auto fds = bind_source_sockets(p, s);
      if (!fds) return tl::unexpected(fds.error());
      for (const ingest::ListenSocket& l : *fds) spdlog::info("source {}: {} bound", s.name, l.what);
      bound.emplace(s.name, std::move(*fds));
    }
    for (auto& [name, fds] : bound) sockets.insert_or_assign(name, std::move(fds));
    std::erase_if(sockets, [&](const auto& entry) {
      return std::none_of(p.sources.begin(), p.sources.end(),
                          [&](const config::SourceConfig& s) { return s.name == entry.first; });
    });
    return {};
  }

  void start_child(Child& c) {
    std::vector<std::string> argv_text = {"ringpipe:" + c.info.name, "component", c.info.name};
    std::vector<int> inherited;
    if (auto it = sockets.find(c.info.name); it != sockets.end()) {
      for (const ingest::ListenSocket& l : it->second) {
        argv_text.push_back("--listen-fd");
        argv_text.push_back(l.key + "=" + std::to_string(l.fd.get()));
        inherited.push_back(l.fd.get());
      }
    }
    for (std::string& a : options.source.child_args()) argv_text.push_back(std::move(a));
    for (std::string& a : options.log.child_args()) argv_text.push_back(std::move(a));
    std::vector<char*> argv;
    argv.reserve(argv_text.size() + 1);
    for (std::string& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      // Child: only async-signal-safe calls until exec.
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      // A component never outlives its supervisor (a new supervisor starts fresh ones).
      ::prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
      if (::getppid() != parent) ::_exit(kExitFailure);
      // The source's own sockets survive exec; every other descriptor is close-on-exec.
      for (const int fd : inherited) ::fcntl(fd, F_SETFD, 0);
      ::execv(options.executable.c_str(), argv.data());
      ::_exit(127);
    }
    const auto now = Clock::now();
    if (pid < 0) {
      spdlog::error("component {}: fork: {}", c.info.name, ::strerror(errno));
      c.state = ComponentState::kBackoff;
      c.next_start = now + options.backoff_initial;
      c.next_start_ns = realtime_ns() + ms_of(options.backoff_initial) * 1'000'000;
      return;
    }
    c.pid = pid;
    c.state = ComponentState::kRunning;
    c.started = now;
    c.started_ns = realtime_ns();
    c.term_sent = false;
    ++c.starts;
    if (c.starts == 1)
      spdlog::info("component {} ({}): started, pid {}", c.info.name, component_kind_name(c.info.kind), pid);
    else
      spdlog::info("component {} ({}): restarted, pid {} (restart {})", c.info.name, component_kind_name(c.info.kind),
                   pid, c.starts - 1);
  }

  void send_term(Child& c) {
    if (c.pid <= 0 || c.term_sent) return;
    ::kill(c.pid, SIGTERM);
    c.term_sent = true;
    c.term_deadline = Clock::now() + options.stop_timeout;
    c.state = ComponentState::kStopping;
    spdlog::info("component {}: stopping (pid {})", c.info.name, c.pid);
  }

  void on_exit(pid_t pid, int wait_status) {
    Child* found = nullptr;
    for (auto& c : children)
      if (c.pid == pid) found = &c;
    if (!found) return;  // an orphan we reaped as PID 1
    Child& c = *found;
    const auto now = Clock::now();
    const auto uptime = now - c.started;
    c.pid = 0;
    c.last_exit = encode_exit(wait_status);
    c.last_exit_ns = realtime_ns();
    if (c.term_sent) {
      c.term_sent = false;
      c.state = ComponentState::kStopped;
      spdlog::info("component {}: stopped ({}) after {}", c.info.name, describe_exit(wait_status),
                   format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(uptime)));
      if (c.restart_after_stop && !stopping) {
        c.restart_after_stop = false;
        c.quick_failures = 0;
        c.backoff = std::chrono::milliseconds(0);
        start_child(c);
      }
      return;
    }
    c.restart_after_stop = false;  // it starts again below, with the current config
    if (c.remove_after_stop) {
      c.state = ComponentState::kStopped;
      return;
    }
    const bool quick = uptime < options.quick_failure_window;
    c.quick_failures = quick ? c.quick_failures + 1 : 1;
    if (!quick) c.backoff = std::chrono::milliseconds(0);
    spdlog::error("component {} (pid {}) died: {} after {}", c.info.name, pid, describe_exit(wait_status),
                  format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(uptime)));
    if (stopping) {
      c.state = ComponentState::kStopped;
      return;
    }
    if (quick && c.quick_failures >= options.max_quick_failures) {
      c.state = ComponentState::kFailed;
      spdlog::error(
          "component {}: failed {} times in a row within {} of starting (last: {}); giving up and stopping the "
          "pipeline",
          c.info.name, c.quick_failures, format_duration(options.quick_failure_window), describe_exit(wait_status));
      exit_code = kExitFailure;
      begin_stop(false);
      return;
    }
    c.backoff = c.backoff.count() == 0 ? options.backoff_initial : std::min(c.backoff * 2, options.backoff_max);
    c.state = ComponentState::kBackoff;
    c.next_start = now + c.backoff;
    c.next_start_ns = realtime_ns() + c.backoff.count() * 1'000'000;
    spdlog::warn("component {}: restarting in {}", c.info.name, format_duration(c.backoff));
  }

  void reap() {
    for (;;) {
      int st = 0;
      const pid_t pid = ::waitpid(-1, &st, WNOHANG);
      if (pid <= 0) return;
      on_exit(pid, st);
    }
  }

  void begin_stop(bool skip_drain) {
    if (!stopping) {
      stopping = true;
      state = SupervisorState::kStopping;
      drain_deadline = Clock::now() + options.drain_timeout;
      spdlog::info("stopping: sources first, then readers once the rings are drained (at most {})",
                   format_duration(options.drain_timeout));
      for (auto& c : children) {
        if (c.state == ComponentState::kBackoff) c.state = ComponentState::kStopped;
        c.restart_after_stop = false;
      }
    }
    if (skip_drain && !drain_skipped) {
      drain_skipped = true;
      spdlog::warn("stopping now, without waiting for the rings to drain");
    }
  }

  std::uint64_t reader_lag(const std::string& ring_name, const std::string& reader) const {
    auto it = rings.find(ring_name);
    if (it == rings.end()) return 0;
    for (const ring::ReaderStats& r : it->second.stats().readers)
      if (r.name == reader) return r.lag_bytes;
    return 0;
  }

  // True when nothing can still write into `ring_name`.
  bool producers_gone(const std::string& ring_name) const {
    for (const Child& c : children) {
      if (c.pid <= 0) continue;
      for (const std::string& out : c.info.outputs)
        if (out == ring_name) return false;
    }
    return true;
  }

  void drive_stop() {
    const auto now = Clock::now();
    const bool deadline_passed = drain_skipped || now >= drain_deadline;
    for (Child& c : children) {
      if (c.pid <= 0 || c.term_sent) continue;
      bool ready = c.info.kind == ComponentKind::kSource || deadline_passed;
      if (!ready) {
        ready = true;
        for (const std::string& in : c.info.inputs)
          if (!producers_gone(in) || reader_lag(in, c.info.reader) > 0) ready = false;
      }
      if (ready) send_term(c);
    }
  }

  void kill_overdue() {
    const auto now = Clock::now();
    for (Child& c : children) {
      if (c.pid > 0 && c.term_sent && now >= c.term_deadline) {
        spdlog::warn("component {}: still running {} after SIGTERM; sending SIGKILL", c.info.name,
                     format_duration(options.stop_timeout));
        ::kill(c.pid, SIGKILL);
        c.term_deadline = now + options.stop_timeout;
      }
    }
  }

  // Returns whether it started any, so the status file shows it at once.
  bool start_due() {
    const auto now = Clock::now();
    bool started = false;
    for (Child& c : children) {
      if (c.state == ComponentState::kBackoff && now >= c.next_start) {
        if (c.starts > 0) count_restart(c);
        start_child(c);
        started = true;
      }
    }
    return started;
  }

  bool any_running() const {
    return std::any_of(children.begin(), children.end(), [](const Child& c) { return c.pid > 0; });
  }

  std::vector<Child> children_of(const config::PipelineConfig& p) {
    std::vector<Child> out;
    for (ComponentInfo& info : pipeline_components(p)) {
      if (disabled(info.name)) continue;
      Child c;
      c.info = std::move(info);
      out.push_back(std::move(c));
    }
    return out;
  }

  // SIGHUP: load, check, plan, apply. A file that does not load or check, or
  // a new ring that cannot be created, refuses the reload and changes nothing.
  void reload() {
    spdlog::info("SIGHUP: reloading {}", options.source.describe());
    auto loaded = options.source.load();
    if (!loaded) {
      spdlog::error("reload refused; the running pipeline is kept:");
      for (const auto& d : loaded.error().diagnostics) spdlog::error("  {}", d.to_string());
      return;
    }
    config::PipelineConfig next = std::move(*loaded);
    std::vector<std::string> problems = check_reload(pipeline, next);
    if (problems.empty()) {
      const ReloadPlan plan = plan_reload(pipeline, next);
      if (auto st = apply(plan, std::move(next)); !st) problems.push_back(st.error().message());
    }
    if (!problems.empty()) {
      spdlog::error("reload refused; the running pipeline is kept:");
      for (const auto& p : problems) spdlog::error("  {}", p);
    }
  }

  // Creates the plan's new rings first (a ring that cannot be opened fails the
  // reload before anything else changed), registers the readers, then stops
  // removed children, restarts changed ones once they exited and starts new ones.
  Status apply(const ReloadPlan& plan, config::PipelineConfig next) {
    if (auto st = bind_sockets(next); !st) return st;
    std::map<std::string, ring::Ring> opened;
    for (const std::string& name : plan.new_rings) {
      if (rings.count(name)) continue;  // still open from before an earlier reload removed it
      auto ring = ring::Ring::open_or_create(next.ring_path(name), ring_options(next, *next.find_ring(name)));
      if (!ring) return tl::unexpected(Error{{}, "open ring " + name + ": " + ring.error().message()});
      opened.emplace(name, std::move(*ring));
    }
    for (auto& [name, ring] : opened) rings.insert_or_assign(name, std::move(ring));
    register_readers(next, rings);

    std::vector<Child> merged;
    std::size_t restarted = 0, added = 0, removed = 0;
    for (Child& w : children_of(next)) {
      Child* old = find_child(w.info.name);
      if (!old) {
        ++added;
        merged.push_back(std::move(w));
        continue;
      }
      Child c = std::move(*old);
      old->info.name.clear();  // moved into the new list
      if (std::find(plan.restart.begin(), plan.restart.end(), w.info.name) != plan.restart.end()) {
        ++restarted;
        spdlog::info("component {}: config changed, restarting", w.info.name);
        if (c.pid > 0) c.restart_after_stop = true;
      }
      c.info = std::move(w.info);
      merged.push_back(std::move(c));
    }
    for (Child& old : children) {
      if (old.info.name.empty()) continue;
      ++removed;
      spdlog::info("component {}: removed from the pipeline", old.info.name);
      old.remove_after_stop = true;
      merged.push_back(std::move(old));
    }
    children = std::move(merged);
    pipeline = std::move(next);
    for (Child& c : children) {
      if (c.remove_after_stop || c.restart_after_stop) {
        if (c.pid > 0)
          send_term(c);
        else if (c.remove_after_stop)
          c.state = ComponentState::kStopped;
      } else if (c.starts == 0 && c.pid <= 0) {
        start_child(c);
      }
    }
    spdlog::info("reloaded: {} restarted, {} added, {} removed", restarted, added, removed);
    return {};
  }

  void drop_removed() {
    std::erase_if(children, [](const Child& c) { return c.remove_after_stop && c.pid <= 0; });
  }

  int timeout_ms() const {
    auto next = Clock::now() + std::chrono::seconds(1);
    for (const Child& c : children) {
      if (c.state == ComponentState::kBackoff) next = std::min(next, c.next_start);
      if (c.pid > 0 && c.term_sent) next = std::min(next, c.term_deadline);
    }
    if (stopping) next = std::min(next, Clock::now() + std::chrono::milliseconds(20));
    return static_cast<int>(std::max<std::int64_t>(0, ms_of(next - Clock::now()) + 1));
  }

  int loop() {
    for (Child& c : children) start_child(c);
    state = SupervisorState::kRunning;
    write_status();
    for (;;) {
      pollfd pfd{signal_fd.get(), POLLIN, 0};
      const int rc = ::poll(&pfd, 1, timeout_ms());
      bool changed = false;
      if (rc > 0) {
        signalfd_siginfo si{};
        while (::read(signal_fd.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
          switch (si.ssi_signo) {
            case SIGCHLD:
              break;  // reaped below, whichever child it was
            case SIGHUP:
              if (!stopping) {
                state = SupervisorState::kReloading;
                write_status();
                reload();
                state = SupervisorState::kRunning;
              }
              break;
            case SIGTERM:
            case SIGINT:
              spdlog::info("{} received", ::strsignal(static_cast<int>(si.ssi_signo)));
              begin_stop(stopping);  // a second signal skips the drain
              break;
            default:
              break;
          }
          changed = true;
        }
      }
      reap();
      drop_removed();
      if (stopping) {
        drive_stop();
        kill_overdue();
        if (!any_running()) break;
      } else {
        changed |= start_due();
        kill_overdue();
      }
      if (changed || Clock::now() - last_status_write >= std::chrono::milliseconds(200)) write_status();
    }
    state = exit_code == kExitOk ? SupervisorState::kStopped : SupervisorState::kFailed;
    write_status();
    spdlog::info("stopped{}", exit_code == kExitOk ? "" : " after a failure");
    return exit_code;
  }
};

Supervisor::Supervisor(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Supervisor::~Supervisor() = default;

Result<std::unique_ptr<Supervisor>> Supervisor::create(SupervisorOptions options, config::PipelineConfig pipeline) {
  const sigset_t set = supervisor_signals();
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return errno_error("supervisor: block signals");
  UniqueFd sfd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!sfd.valid()) return errno_error("supervisor: signalfd");
  auto lock = lock_pipeline(pipeline);
  if (!lock) return tl::unexpected(lock.error());
  // What survives a restart, said at every start (docs/operations.md, "State across restarts").
  const std::string dir = pipeline.run_dir + "/" + pipeline.pipeline;
  bool previous = false;
  for (const config::RingConfig& r : pipeline.rings)
    previous = previous || std::filesystem::exists(pipeline.ring_path(r.name));
  if (options.fresh) {
    spdlog::info("--fresh: removed {} files of the previous run from {}; every counter, gauge and ring starts empty",
                 remove_previous_run(pipeline), dir);
  } else if (previous) {
    spdlog::info(
        "state of the previous run kept: re-attaching the rings in {}; counters, gauges and series carry on and unread "
        "samples are still delivered (start empty with `ringpipe run --fresh`)",
        dir);
  } else {
    spdlog::info("no previous state in {}: every ring starts empty", dir);
  }
  if (auto st = check_free_space(pipeline); !st) return tl::unexpected(st.error());
  for (const config::ExporterConfig& e : pipeline.exporters) {
    if (std::find(options.disabled.begin(), options.disabled.end(), e.name) != options.disabled.end()) continue;
    if (auto st = probe_http_port(e); !st) return tl::unexpected(st.error());
  }
  auto status = StatusFile::create(status_file_path(pipeline.run_dir, pipeline.pipeline));
  if (!status) return tl::unexpected(status.error());
  auto impl = std::make_unique<Impl>(std::move(options), std::move(pipeline), std::move(*lock), std::move(*status));
  impl->signal_fd = std::move(sfd);
  // Every source listens before any component starts: an exporter that answers
  // means the sockets are there, and what arrives waits in their queues.
  if (auto st = impl->bind_sockets(impl->pipeline); !st) {
    impl->state = SupervisorState::kFailed;
    impl->write_status();
    return tl::unexpected(st.error());
  }
  if (auto st = impl->open_rings_of(impl->pipeline, impl->rings); !st) return tl::unexpected(st.error());
  impl->register_readers(impl->pipeline, impl->rings);
  impl->children = impl->children_of(impl->pipeline);
  impl->open_segment();
  impl->write_status();
  return std::unique_ptr<Supervisor>(new Supervisor(std::move(impl)));
}

int Supervisor::run() { return impl_->loop(); }

}  // namespace ringpipe::apps
