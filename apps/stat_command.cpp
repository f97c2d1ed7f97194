// `ringpipe stat [FILE] [--once]`: rings and components, from shared memory only.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

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

// Totals of one ring at one instant, for rates between frames.
struct RingSample {
  std::int64_t at_ns = 0;
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
  std::map<std::string, std::uint64_t> reader_records;
};

std::string rate(double per_s) {
  if (per_s >= 1e6) return fmt::format("{:.1f}M/s", per_s / 1e6);
  if (per_s >= 1e3) return fmt::format("{:.1f}k/s", per_s / 1e3);
  return fmt::format("{:.0f}/s", per_s);
}

std::string byte_rate(double per_s) { return format_bytes(static_cast<std::uint64_t>(per_s)) + "/s"; }

std::string_view reader_state(ring::ReaderStats::State s) {
  switch (s) {
    case ring::ReaderStats::State::kFree:
      return "free";
    case ring::ReaderStats::State::kInit:
      return "init";
    case ring::ReaderStats::State::kActive:
      return "active";
    case ring::ReaderStats::State::kDead:
      return "dead";
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
  if (!fullest || s.lane_capacity_bytes == 0) return "fill 0.0%";
  return fmt::format(
      "fill {:.1f}% (reader {}, lane {})",
      100.0 * static_cast<double>(fullest->max_lane_lag_bytes) / static_cast<double>(s.lane_capacity_bytes),
      fullest->name, fullest_lane(*fullest));
}

std::string exit_text(std::int64_t e) {
  if (e == kNoExit) return "-";
  if (e < 0) return fmt::format("signal {}", -e);
  return fmt::format("exit {}", e);
}

class StatView {
 public:
  explicit StatView(config::PipelineConfig p) : pipeline_(std::move(p)) {}

  std::string frame() {
    std::string out;
    const std::int64_t now = realtime_ns();
    out += fmt::format("pipeline {}  ({})\n", pipeline_.pipeline,
                       (std::filesystem::path(pipeline_.run_dir) / pipeline_.pipeline).string());
    auto status = read_status_file(status_file_path(pipeline_.run_dir, pipeline_.pipeline));
    if (!status) {
      out += fmt::format("supervisor: no status ({})\n", status.error().message());
    } else if (pid_alive(status->pid) && status->state != SupervisorState::kStopped) {
      out += fmt::format("supervisor: {}, pid {}, up {}\n", supervisor_state_name(status->state), status->pid,
                         format_duration(std::chrono::milliseconds((now - status->started_ns) / 1'000'000)));
    } else {
      out += fmt::format("supervisor: not running (pid {}, last state {})\n", status->pid,
                         supervisor_state_name(status->state));
    }

    out += "\nRINGS\n";
    for (const config::RingConfig& rc : pipeline_.rings) ring_lines(rc, out);

    out += "\nCOMPONENTS\n";
    out += fmt::format("{:<20} {:<10} {:<9} {:>8} {:>10} {:>9} {:<12}\n", "NAME", "KIND", "STATE", "PID", "UPTIME",
                       "RESTARTS", "LAST EXIT");
    const bool supervisor_up = status && pid_alive(status->pid);
    for (const ComponentInfo& c : pipeline_components(pipeline_)) {
      const ComponentStatus* s = nullptr;
      if (status)
        for (const auto& cs : status->components)
          if (cs.name == c.name) s = &cs;
      if (!s) {
        out += fmt::format("{:<20} {:<10} {:<9} {:>8} {:>10} {:>9} {:<12}\n", c.name, component_kind_name(c.kind),
                           "not-run", "-", "-", "-", "-");
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
      out +=
          fmt::format("{:<20} {:<10} {:<9} {:>8} {:>10} {:>9} {:<12}\n", c.name, component_kind_name(c.kind), state,
                      alive ? std::to_string(s->pid) : std::string("-"), uptime, s->restarts, exit_text(s->last_exit));
    }
    counter_lines(out);
    return out;
  }

 private:
  // From each component's stats segment: the totals that mean trouble (names
  // with error, drop or conflict), summed over their labels.
  void counter_lines(std::string& out) {
    out += "\nCOUNTERS\n";
    for (const ComponentInfo& c : pipeline_components(pipeline_)) {
      auto r = stats::StatsReader::open(stats_segment_path(pipeline_, c.name));
      if (!r) {
        out += fmt::format("{:<20} no stats segment\n", c.name);
        continue;
      }
      std::vector<std::pair<std::string, double>> sums;
      for (const stats::StatsEntry& e : r->snapshot()) {
        if (e.type != stats::StatsType::kCounter || !e.name.ends_with("_total")) continue;
        if (e.name.find("error") == std::string::npos && e.name.find("drop") == std::string::npos &&
            e.name.find("conflict") == std::string::npos) {
          continue;
        }
        std::string shortname = e.name.substr(0, e.name.size() - 6);
        if (const auto u = shortname.find('_'); u != std::string::npos) shortname = shortname.substr(u + 1);
        auto it = std::find_if(sums.begin(), sums.end(), [&](const auto& kv) { return kv.first == shortname; });
        if (it == sums.end()) it = sums.insert(sums.end(), {shortname, 0.0});
        it->second += e.value();
      }
      std::string line = fmt::format("{:<20}", c.name);
      for (const auto& [name, v] : sums) line += fmt::format(" {}={}", name, v);
      out += line + "\n";
    }
  }

  void ring_lines(const config::RingConfig& rc, std::string& out) {
    const std::string path = pipeline_.ring_path(rc.name);
    if (!rings_.count(rc.name)) {
      auto r = ring::Ring::open(path);
      if (!r) {
        out += fmt::format("ring {}: not available ({})\n", rc.name, r.error().message());
        return;
      }
      rings_.emplace(rc.name, std::move(*r));
    }
    const ring::RingStats s = rings_.at(rc.name).stats();
    RingSample now;
    now.at_ns = monotonic_ns();
    std::uint64_t dropped = 0, recovered = 0, producers = 0, full_waits = 0;
    for (const auto& l : s.lane) {
      now.records += l.records;
      now.bytes += l.bytes;
      dropped += l.dropped_records;
      recovered += l.recovered_claims;
      full_waits += l.full_waits;
      producers += l.owned ? 1 : 0;
    }
    for (const auto& r : s.readers) now.reader_records[r.name] = r.records;
    const RingSample* before = samples_.count(rc.name) ? &samples_[rc.name] : nullptr;
    const double dt = before ? static_cast<double>(now.at_ns - before->at_ns) / 1e9 : 0;
    auto per_s = [&](std::uint64_t a, std::uint64_t b) {
      return dt > 0 && a >= b ? rate(static_cast<double>(a - b) / dt) : std::string("-");
    };
    auto bytes_per_s = [&](std::uint64_t a, std::uint64_t b) {
      return dt > 0 && a >= b ? byte_rate(static_cast<double>(a - b) / dt) : std::string("-");
    };
    out += fmt::format(
        "ring {}: {}, {} lanes x {}, {}, in {} ({}), records {}, producers {}, dropped {}, recovered "
        "claims {}, full waits {}\n",
        rc.name, ring::overflow_name(s.overflow), s.lanes, format_bytes(s.lane_capacity_bytes), fill_text(s),
        per_s(now.records, before ? before->records : 0), bytes_per_s(now.bytes, before ? before->bytes : 0),
        now.records, producers, dropped, recovered, full_waits);
    for (const auto& r : s.readers) {
      const std::uint64_t prev =
          before && before->reader_records.count(r.name) ? before->reader_records.at(r.name) : r.records;
      const std::string lag = r.max_lane_lag_bytes > 0
                                  ? fmt::format("{} (lane {}: {})", format_bytes(r.lag_bytes), fullest_lane(r),
                                                format_bytes(r.max_lane_lag_bytes))
                                  : format_bytes(r.lag_bytes);
      out += fmt::format(
          "  reader {}: {} {} {}, pid {}, lag {}, rate {}, records {}, lapped {}, torn {}, corrupt {}, evictions {}\n",
          r.name, r.alive ? "alive" : "not-alive", reader_state(r.state), r.gating ? "gating" : "not-gating", r.pid,
          lag, before ? per_s(r.records, prev) : std::string("-"), r.records, r.lapped_records, r.torn_records,
          r.corrupt_records, r.evictions);
    }
    samples_[rc.name] = std::move(now);
  }

  config::PipelineConfig pipeline_;
  std::map<std::string, ring::Ring> rings_;
  std::map<std::string, RingSample> samples_;
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
    // Two samples a moment apart, so the frame has rates.
    (void)view.frame();
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
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
