// `ringpipe stat [FILE] [--once]`: rings and components, from shared memory only.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"
#include "components.hpp"
#include "ringpipe/common/log.hpp"
#include "ringpipe/stats/stats_segment.hpp"
#include "status_file.hpp"

namespace ringpipe::apps {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_stat_signal(int) { g_stop.store(true, std::memory_order_relaxed); }

bool pid_alive(std::uint32_t pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

// The frame is meant for an 80x24 terminal: with the built-in pipeline it is
// at most kWidth columns and kHeight lines.
constexpr std::size_t kWidth = 80;

// 1234567 -> "1.23M", 20000 -> "20.0k".
std::string count_text(double n) {
  if (n >= 1e9) return fmt::format("{:.2f}G", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.2f}M", n / 1e6);
  if (n >= 1e4) return fmt::format("{:.1f}k", n / 1e3);
  return fmt::format("{:.0f}", n);
}

// A line no wider than kWidth: a long path or name gives up its middle.
std::string fit(std::string line) {
  if (line.size() <= kWidth) return line;
  const std::size_t keep = kWidth - 3;
  return line.substr(0, keep / 2) + "..." + line.substr(line.size() - (keep - keep / 2));
}

std::string_view reader_state(const ring::ReaderStats& r) {
  switch (r.state) {
    case ring::ReaderStats::State::kFree:
      return "free";
    case ring::ReaderStats::State::kInit:
      return "init";
    case ring::ReaderStats::State::kActive:
      return r.alive ? (r.gating ? "active" : "loose") : "detached";
    case ring::ReaderStats::State::kDead:
      return "evicted";
  }
  return "?";
}

// The lane `r` keeps fullest (the first of equals).
std::uint32_t fullest_lane(const ring::ReaderStats& r) {
  const auto it = std::max_element(r.lane_lag_bytes.begin(), r.lane_lag_bytes.end());
  return it == r.lane_lag_bytes.end() ? 0 : static_cast<std::uint32_t>(it - r.lane_lag_bytes.begin());
}

// How full a ring is for its producers: each writes one lane and is held back
// when an active reader it waits for is a lane behind there, so the fill is
// the fullest lane of such a reader over a lane's capacity. A ring-wide
// average would hide one full lane among empty ones, and a non-gating reader,
// however far behind, is lapped instead of waited for.
std::string fill_text(const ring::RingStats& s) {
  const ring::ReaderStats* fullest = nullptr;
  for (const auto& r : s.readers) {
    if (r.state != ring::ReaderStats::State::kActive || !r.gating) continue;
    if (r.max_lane_lag_bytes > 0 && (!fullest || r.max_lane_lag_bytes > fullest->max_lane_lag_bytes)) fullest = &r;
  }
  if (!fullest || s.lane_capacity_bytes == 0) return "0.0%";
  return fmt::format(
      "{:.1f}% ({} lane {})",
      100.0 * static_cast<double>(fullest->max_lane_lag_bytes) / static_cast<double>(s.lane_capacity_bytes),
      fullest->name, fullest_lane(*fullest));
}

std::string exit_text(std::int64_t e) {
  if (e == kNoExit) return "-";
  if (e < 0) return fmt::format("signal {}", -e);
  return fmt::format("exit {}", e);
}

// The totals of one frame, kept for the rates of the next one: per key
// ("<component>/<counter>", "<ring>/in", "<ring>/<reader>") when it was
// read and its value.
struct Totals {
  std::map<std::string, std::pair<std::int64_t, double>> values;
};

class StatView {
 public:
  explicit StatView(config::PipelineConfig p) : pipeline_(std::move(p)) {}

  std::string frame() {
    now_ = Totals{};
    std::vector<std::string> lines;
    header_lines(lines);
    component_lines(lines);
    flow_lines(lines);
    ring_lines(lines);
    trouble_lines(lines);
    before_ = std::move(now_);
    std::string out;
    for (std::string& l : lines) {
      while (!l.empty() && l.back() == ' ') l.pop_back();
      out += fit(std::move(l)) + "\n";
    }
    return out;
  }

 private:
  // The rate of `key` since the previous frame, `total` being its value at
  // `at_ns` (a stats segment's counters are as of its last publish, which
  // its heartbeat dates; a ring's are read now); nullopt on the first frame,
  // when nothing was published in between, or when the total went backwards
  // (a restarted writer).
  std::optional<double> rate_of(const std::string& key, double total, std::int64_t at_ns = realtime_ns()) {
    now_.values[key] = {at_ns, total};
    const auto it = before_.values.find(key);
    if (it == before_.values.end() || at_ns <= it->second.first || total < it->second.second) return std::nullopt;
    return (total - it->second.second) / (static_cast<double>(at_ns - it->second.first) / 1e9);
  }
  static std::string rate_text(std::optional<double> r) { return r ? count_text(*r) : std::string("-"); }

  void header_lines(std::vector<std::string>& lines) {
    const std::int64_t now = realtime_ns();
    lines.push_back(fmt::format("pipeline {}  {}", pipeline_.pipeline,
                                (std::filesystem::path(pipeline_.run_dir) / pipeline_.pipeline).string()));
    status_ = read_status_file(status_file_path(pipeline_.run_dir, pipeline_.pipeline));
    if (!status_) {
      lines.push_back(fmt::format("supervisor: no status ({})", status_.error().message()));
    } else if (pid_alive(status_->pid) && status_->state != SupervisorState::kStopped) {
      lines.push_back(fmt::format("supervisor: {}, pid {}, up {}", supervisor_state_name(status_->state), status_->pid,
                                  format_duration(std::chrono::milliseconds((now - status_->started_ns) / 1'000'000))));
    } else {
      lines.push_back(fmt::format("supervisor: not running (pid {}, last state {})", status_->pid,
                                  supervisor_state_name(status_->state)));
    }
  }

  void component_lines(std::vector<std::string>& lines) {
    const std::int64_t now = realtime_ns();
    lines.emplace_back();
    lines.push_back(fmt::format("{:<14} {:<9} {:<8} {:>8} {:>8} {:>8}  {}", "COMPONENT", "KIND", "STATE", "PID",
                                "UPTIME", "RESTARTS", "LAST EXIT"));
    const bool supervisor_up = status_ && pid_alive(status_->pid);
    for (const ComponentInfo& c : pipeline_components(pipeline_)) {
      const ComponentStatus* s = nullptr;
      if (status_)
        for (const auto& cs : status_->components)
          if (cs.name == c.name) s = &cs;
      if (!s) {
        lines.push_back(fmt::format("{:<14} {:<9} {:<8} {:>8} {:>8} {:>8}  {}", c.name, component_kind_name(c.kind),
                                    "not-run", "-", "-", "-", "-"));
        continue;
      }
      const bool alive = pid_alive(s->pid);
      std::string state(component_state_name(s->state));
      if (s->pid > 0 && !alive)
        state = "dead";
      else if (!supervisor_up && alive)
        state += "*";  // still running without its supervisor
      const std::string uptime =
          alive ? format_duration(std::chrono::milliseconds((now - s->started_ns) / 1'000'000)) : std::string("-");
      lines.push_back(fmt::format("{:<14} {:<9} {:<8} {:>8} {:>8} {:>8}  {}", c.name, component_kind_name(c.kind),
                                  state, alive ? std::to_string(s->pid) : std::string("-"), uptime, s->restarts,
                                  exit_text(s->last_exit)));
    }
  }

  // Each component's stats segment, summed by counter name over labels, and
  // the time of its last publish (0 = none).
  std::map<std::string, double> counters_of(const std::string& component, std::int64_t* published_ns) {
    std::map<std::string, double> sums;
    *published_ns = 0;
    auto r = stats::StatsReader::open(stats_segment_path(pipeline_, component));
    if (!r) return sums;
    for (const stats::StatsEntry& e : r->snapshot()) sums[e.name] += e.value();
    *published_ns = r->info().heartbeat_ns;
    return sums;
  }

  // What flows through sources (lines and samples per second) and
  // processors (samples per second, series against the budget).
  void flow_lines(std::vector<std::string>& lines) {
    lines.emplace_back();
    lines.push_back(fmt::format("{:<14} {:>9} {:>9} {:>9} {:>9}  {}", "FLOW", "lines/s", "samples/s", "lines",
                                "samples", "series (budget)"));
    counters_.clear();
    for (const ComponentInfo& c : pipeline_components(pipeline_)) {
      std::int64_t at = 0;
      auto& sums = counters_[c.name] = counters_of(c.name, &at);
      auto get = [&](const char* name) {
        const auto it = sums.find(name);
        return it == sums.end() ? 0.0 : it->second;
      };
      if (c.kind == ComponentKind::kSource) {
        const double l = get("source_lines_total");
        const double n = get("source_samples_total");
        lines.push_back(fmt::format("{:<14} {:>9} {:>9} {:>9} {:>9}", c.name,
                                    rate_text(rate_of(c.name + "/lines", l, at)),
                                    rate_text(rate_of(c.name + "/samples", n, at)), count_text(l), count_text(n)));
      } else if (c.kind == ComponentKind::kProcessor) {
        const double n = get("processor_samples_total");
        const double live = get("processor_series_live");
        std::uint64_t budget = 0;
        for (const config::ProcessorConfig& p : pipeline_.processors)
          if (p.name == c.name) budget = p.max_series;
        const std::string series =
            budget == 0 ? fmt::format("{} (no limit)", count_text(live))
                        : fmt::format("{} of {} ({:.1f}%)", count_text(live), count_text(static_cast<double>(budget)),
                                      100.0 * live / static_cast<double>(budget));
        lines.push_back(fmt::format("{:<14} {:>9} {:>9} {:>9} {:>9}  {}", c.name, "",
                                    rate_text(rate_of(c.name + "/samples", n, at)), "", count_text(n), series));
      }
    }
  }

  void ring_lines(std::vector<std::string>& lines) {
    lines.emplace_back();
    lines.push_back(
        fmt::format("{:<14} {:<8} {:>9} {:>9} {:>9}  {}", "RING / READER", "", "rec/s", "lag", "lag rec", "lag bytes"));
    for (const config::RingConfig& rc : pipeline_.rings) {
      const std::string path = pipeline_.ring_path(rc.name);
      if (!rings_.count(rc.name)) {
        auto r = ring::Ring::open(path);
        if (!r) {
          lines.push_back(fmt::format("{:<14} not available ({})", rc.name, r.error().message()));
          continue;
        }
        rings_.emplace(rc.name, std::move(*r));
      }
      const ring::RingStats s = rings_.at(rc.name).stats();
      std::uint64_t records = 0;
      for (const auto& l : s.lane) records += l.records;
      const std::optional<double> in = rate_of(rc.name + "/in", static_cast<double>(records));
      lines.push_back(fmt::format("{:<14} {:<8} {:>9} {}x{}  fill {}", rc.name, ring::overflow_name(s.overflow),
                                  rate_text(in), s.lanes, format_bytes(s.lane_capacity_bytes), fill_text(s)));
      for (const auto& r : s.readers) {
        // A processor's gate (<reader>.c) trails its reader until the shards
        // commit: what lies between them is applied, not lag.
        const ring::ReaderStats* worker = nullptr;
        if (r.name.size() > 2 && r.name.ends_with(".c")) {
          for (const auto& w : s.readers)
            if (w.name == r.name.substr(0, r.name.size() - 2)) worker = &w;
        }
        const std::string name = "  " + r.name;
        if (worker != nullptr) {
          const std::string behind =
              r.lag_records_known && worker->lag_records_known && r.lag_records >= worker->lag_records
                  ? count_text(static_cast<double>(r.lag_records - worker->lag_records))
                  : std::string("?");
          lines.push_back(
              fmt::format("{:<14} {:<8} {:>9} {:>9} {:>9}  {} uncommitted", name, "gate", "", "", "", behind));
          continue;
        }
        lines.push_back(fmt::format("{:<14} {:<8} {:>9} {:>9} {:>9}  {}", name, reader_state(r),
                                    rate_text(rate_of(rc.name + "/" + r.name, static_cast<double>(r.records))),
                                    lag_time(r, in), r.lag_records_known ? count_text(r.lag_records) : "?",
                                    format_bytes(r.lag_bytes)));
      }
    }
  }

  // How far behind a reader is in time: the time the producers took to write
  // what it has not read yet, at the ring's current write rate.
  static std::string lag_time(const ring::ReaderStats& r, std::optional<double> in) {
    if (!r.lag_records_known) return "?";
    if (r.lag_records == 0) return "0s";
    if (!in) return "-";
    if (*in <= 0) return r.alive ? "idle" : "stalled";
    const double s = static_cast<double>(r.lag_records) / *in;
    if (s < 1) return fmt::format("{:.0f}ms", s * 1000);
    return format_duration(std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000)));
  }

  // Counters that mean trouble (names with error, drop, conflict or lost)
  // and are not 0, and the rings' drops, recovered claims, lapped or corrupt
  // records and evictions: as many as fit the 24 lines.
  void trouble_lines(std::vector<std::string>& lines) {
    std::vector<std::string> items;
    for (const auto& [component, sums] : counters_) {
      for (const auto& [name, v] : sums) {
        if (v == 0 || !name.ends_with("_total")) continue;
        if (name.find("error") == std::string::npos && name.find("drop") == std::string::npos &&
            name.find("conflict") == std::string::npos && name.find("lost") == std::string::npos) {
          continue;
        }
        std::string shortname = name.substr(0, name.size() - 6);
        if (const auto u = shortname.find('_'); u != std::string::npos) shortname = shortname.substr(u + 1);
        items.push_back(fmt::format("{} {}={}", component, shortname, count_text(v)));
      }
    }
    for (const auto& [name, ring] : rings_) {
      const ring::RingStats s = ring.stats();
      std::uint64_t dropped = 0;
      std::uint64_t recovered = 0;
      for (const auto& l : s.lane) {
        dropped += l.dropped_records;
        recovered += l.recovered_claims;
      }
      if (dropped > 0) items.push_back(fmt::format("ring {} dropped={}", name, dropped));
      if (recovered > 0) items.push_back(fmt::format("ring {} recovered_claims={}", name, recovered));
      for (const auto& r : s.readers) {
        if (r.lapped_records > 0) items.push_back(fmt::format("{} lapped={}", r.name, r.lapped_records));
        if (r.corrupt_records > 0) items.push_back(fmt::format("{} corrupt={}", r.name, r.corrupt_records));
        if (r.evictions > 0) items.push_back(fmt::format("{} evictions={}", r.name, r.evictions));
      }
    }
    lines.emplace_back();
    if (items.empty()) {
      lines.emplace_back("TROUBLE  none: no errors, drops or losses counted");
      return;
    }
    std::string line = "TROUBLE ";
    std::size_t shown = 0;
    for (const std::string& item : items) {
      if (line.size() + 2 + item.size() > kWidth) {
        if (lines.size() >= 23) break;
        lines.push_back(std::move(line));
        line = "       ";
      }
      line += "  " + item;
      ++shown;
    }
    if (shown < items.size()) line += fmt::format("  (+{} more)", items.size() - shown);
    lines.push_back(std::move(line));
  }

  config::PipelineConfig pipeline_;
  std::map<std::string, ring::Ring> rings_;
  Result<SupervisorStatus> status_ = tl::unexpected(Error{});
  std::map<std::string, std::map<std::string, double>> counters_;
  Totals before_;
  Totals now_;
};

}  // namespace

int stat_command(Args args) {
  if (wants_help(args, "stat")) return kExitOk;
  ArgScanner a(args);
  PipelineArgs pipeline_args;
  bool once = false;
  std::chrono::milliseconds interval{1000};
  std::string v;
  while (!a.done()) {
    if (a.flag("--once")) {
      once = true;
    } else if (a.option("--interval", &v)) {
      std::string why;
      auto d = duration_option("--interval", v, &why);
      if (d && d->count() == 0) {
        d.reset();
        why = "--interval: found \"" + v + "\", expected a duration greater than 0";
      }
      if (!d) {
        std::fprintf(stderr, "ringpipe stat: %s\n", why.c_str());
        return kExitUsage;
      }
      interval = *d;
    } else if (!pipeline_args.take(a)) {
      std::fprintf(stderr, "ringpipe stat: %s\n", pipeline_args.error().c_str());
      return kExitUsage;
    }
  }
  auto source = pipeline_args.source();
  if (!source) {
    std::fprintf(stderr, "ringpipe stat: %s\n", pipeline_args.error().c_str());
    return kExitUsage;
  }
  auto pipeline = source->load();
  if (!pipeline) {
    print_diagnostics(pipeline.error());
    return kExitConfig;
  }
  StatView view(std::move(*pipeline));
  if (once) {
    // Two samples --interval apart, so the frame has rates (the components
    // publish their counters every 250 ms).
    (void)view.frame();
    std::this_thread::sleep_for(interval);
    const std::string f = view.frame();
    std::fwrite(f.data(), 1, f.size(), stdout);
    return kExitOk;
  }
  struct sigaction sa {};
  sa.sa_handler = on_stat_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  while (!g_stop.load(std::memory_order_relaxed)) {
    const std::string f = "\x1b[H\x1b[2J" + view.frame();
    std::fwrite(f.data(), 1, f.size(), stdout);
    std::fflush(stdout);
    const auto until = std::chrono::steady_clock::now() + interval;
    while (!g_stop.load(std::memory_order_relaxed) && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return kExitOk;
}

}  // namespace ringpipe::apps
