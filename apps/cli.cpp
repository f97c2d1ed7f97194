#include "cli.hpp"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "ringpipe/config/units.hpp"
#include "version.hpp"

namespace ringpipe::apps {
namespace {

constexpr std::string_view kOverview = R"(ringpipe: a telemetry pipeline over shared-memory rings

Usage:
  ringpipe run [FILE] [OPTIONS]            supervise a pipeline (no FILE: the built-in one)
  ringpipe [STATSD_EXPORTER_FLAGS]         the built-in pipeline, configured by statsd_exporter's flags
  ringpipe validate FILE                   check a pipeline file; every error as file:line:column
  ringpipe validate --mapping FILE         check a statsd_exporter mapping file alone
  ringpipe stat [FILE] [--once]            live view of the pipeline's rings and components
  ringpipe tail RING [FILE]                print the decoded records of a pipeline ring
  ringpipe component NAME [--config FILE]  run one source, processor or exporter alone
  ringpipe ring create|inspect|tail|rm-reader PATH ...
                                           work on one ring file directly
  ringpipe help [COMMAND]                  this text, or a command's
  ringpipe --version                       the version

The built-in pipeline (statsd_exporter's defaults): StatsD on UDP and TCP
:9125 -> aggregate -> Prometheus /metrics on :9102.
Sizes and durations read as in a pipeline file: SIZE is 64MiB, 512KiB, 10MB
or a bare number of bytes; DURATION needs a unit (500ms, 10s, 5m, 1h, 1m30s),
and a bare number other than 0 is refused.
Exit status: 0 ok, 1 failure, 2 usage error, 78 bad configuration (or an
address or pipeline it names is taken: nothing started).
)";

constexpr std::string_view kRun = R"(Usage: ringpipe run [FILE | STATSD_EXPORTER_FLAGS...] [OPTIONS]

Supervises a pipeline: validates it, creates or re-attaches its rings under
<run_dir>/<pipeline>/, and runs every source, processor and exporter as its
own process (`ringpipe component NAME`, shown by ps as ringpipe:NAME).
A component that dies is restarted with capped exponential backoff; one that
keeps dying right after it starts makes the supervisor give up (exit 1).
Component status goes to <run_dir>/<pipeline>/supervisor.status (see stat).

Signals:
  SIGTERM, SIGINT  stop sources first, let processors and exporters drain the
                   rings (until every reader's lag is 0 or --drain-timeout),
                   then exit 0
  SIGHUP           reload FILE (or the flags' mapping file); restart only the
                   components whose config changed; rings and data survive

Without FILE the built-in pipeline runs; statsd_exporter's flags
(--statsd.listen-udp, --statsd.listen-tcp, --statsd.listen-unixgram,
--web.listen-address, --web.telemetry-path, --web.config.file (TLS and
bcrypt basic auth), --statsd.mapping-config, --statsd.read-buffer,
--[no-]statsd.parse-*-tags, ...) configure it, and the
supervisor passes the same flags to its children. --statsd.relay.* is
refused (exit 78): ringpipe does not relay. Every statsd_exporter flag and
what ringpipe does with it: docs/migrating-from-statsd_exporter.md.

Options:
  --config FILE             the pipeline file (same as FILE)
  --check-config            load and check the flags, FILE and mapping files,
                            print one line, and exit 0 (ok) or 78 (bad config)
                            without starting anything or binding a port
  --run-dir DIR             put the rings and status under DIR/<pipeline>/
                            instead of the pipeline's run_dir
  --pipeline NAME           name the pipeline NAME (its directory under the
                            run dir) instead of the file's `pipeline:` or the
                            name derived from statsd_exporter's listen flags
  --fresh                   remove the previous run's rings and state first:
                            counters, gauges and unread samples start empty
                            (without it they carry on across a restart)
  --disable NAME            do not run component NAME (repeatable), e.g. when it
                            runs elsewhere
  --drain-timeout DURATION  longest wait for readers to drain at stop (10s);
                            DURATION needs a unit: 500ms, 10s, 1m30s
  --max-quick-failures N    give up after N consecutive deaths within 2s of a
                            start (5)
  --log-level LEVEL         trace, debug, info, warn, error (info)
  --log.level LEVEL         statsd_exporter's: debug, info, warn, error (info)
  --log.format FORMAT       logfmt or json (one JSON object per line); without
                            it: "TIME LEVEL ringpipe[COMPONENT PID] MESSAGE".
                            Components are started with the same log options
  --version                 print the version and exit
)";

constexpr std::string_view kValidate = R"(Usage: ringpipe validate FILE
       ringpipe validate --mapping FILE

Loads the pipeline FILE and its mapping files, or with --mapping only the
statsd_exporter mapping file FILE (what --statsd.mapping-config names), and
prints every problem, one per line, as file:line:column: message.
Exit 0 when valid, 1 when not, 2 on a usage error.
(`ringpipe --check-config STATSD_EXPORTER_FLAGS...` checks a whole
statsd_exporter command line, mapping file included.)
)";

constexpr std::string_view kStat =
    R"(Usage: ringpipe stat [FILE | STATSD_EXPORTER_FLAGS...] [--once] [--interval DURATION]

Shows, in an 80x24 frame for the built-in pipeline, every component (state,
pid, uptime, restarts), the lines and samples per second of each source, the
samples per second and live series against max_series of each processor,
every ring (write rate, fill) and reader (rate, lag in time, records and
bytes; a processor's gate <reader>.c as its uncommitted records, not lag),
and every error, drop or loss counted. Read from shared memory: it works
while the supervisor is down. Refreshes every second until interrupted. A
ring's fill is the fullest lane of an active reader that producers wait for
(a gating reader under block or drop), with that reader and lane named.

Options:
  --once               print one frame (no screen control) from two looks
                       --interval apart and exit
  --interval DURATION  refresh period (1s); DURATION needs a unit: 500ms, 2s
)";

constexpr std::string_view kTail = R"(Usage: ringpipe tail RING [FILE | STATSD_EXPORTER_FLAGS...] [OPTIONS]

Prints the records of the pipeline's ring RING as they arrive, decoded by
record type (sample batches, metric batches, else hex). Reads with a
non-durable reader: it never slows producers down.

Options:
  --from latest|oldest  where to start (latest)
  --count N             exit after N records
  --duration DURATION   exit after this long; DURATION needs a unit: 30s, 5m
)";

constexpr std::string_view kComponent =
    R"(Usage: ringpipe component NAME [--config FILE | STATSD_EXPORTER_FLAGS...] [LOG OPTIONS]

Runs the source, processor or exporter NAME of the pipeline alone, until
SIGTERM or SIGINT (for systemd, containers, and the supervisor's children).
Its rings are opened, or created when missing. Exit 78 on a bad config or
unknown NAME (systemd: RestartPreventExitStatus=78).

Log options (as for run): --log-level LEVEL, --log.level LEVEL,
--log.format logfmt|json.
)";

constexpr std::string_view kRing = R"(Usage:
  ringpipe ring create PATH [--size 64MiB] [--lanes 8] [--readers 16]
                            [--overflow block|drop|overwrite] [--max-record SIZE]
  ringpipe ring inspect PATH
  ringpipe ring tail PATH [--from latest|oldest] [--count N] [--duration DURATION]
  ringpipe ring rm-reader PATH NAME

create     makes a ring file; --size is the data size of all lanes together
inspect    prints the header, geometry, per-lane counters and every reader
           (alive, state, lag)
tail       prints records as they arrive (non-durable reader)
rm-reader  forgets a reader that is not alive, so it stops gating producers

SIZE is 64MiB, 512KiB, 10MB or a bare number of bytes; DURATION needs a unit
(500ms, 10s, 1m30s): as in a pipeline file.
)";

}  // namespace

std::string_view ArgScanner::current() const noexcept {
  const std::string_view a = args_[i_];
  const auto eq = a.find('=');
  return a.rfind("--", 0) == 0 && eq != std::string_view::npos ? a.substr(0, eq) : a;
}

bool ArgScanner::flag(std::string_view name) noexcept {
  if (done() || args_[i_] != name) return false;
  ++i_;
  return true;
}

bool ArgScanner::option(std::string_view name, std::string* value) noexcept {
  if (done() || current() != name) return false;
  const std::string_view a = args_[i_++];
  if (a.size() > name.size()) {
    *value = std::string(a.substr(name.size() + 1));
  } else if (!done()) {
    *value = std::string(args_[i_++]);
  } else {
    error_ = std::string(name) + " needs a value";
  }
  return true;
}

bool bool_flag(ArgScanner& args, std::string_view name, bool* value, std::string* error) {
  const std::string negated = "--no-" + std::string(name.substr(2));
  if (args.flag(negated)) return *value = false, true;
  std::string text;
  if (args.current() != name) return false;
  if (args.flag(name)) return *value = true, true;
  const std::string_view a = args.take();
  text = std::string(a.substr(name.size() + 1));
  if (text == "true") {
    *value = true;
  } else if (text == "false") {
    *value = false;
  } else {
    *error = fmt::format("{}: found \"{}\", expected {}, {} or {}=true|false", name, text, name, negated, name);
  }
  return true;
}

std::vector<std::string> LogOptions::child_args() const {
  std::vector<std::string> out;
  if (level != spdlog::level::info) out.push_back(fmt::format("--log-level={}", spdlog::level::to_string_view(level)));
  if (format == LogFormat::kLogfmt) out.emplace_back("--log.format=logfmt");
  if (format == LogFormat::kJson) out.emplace_back("--log.format=json");
  return out;
}

bool log_option(ArgScanner& args, LogOptions* log, std::string* error) {
  std::string v;
  if (args.option("--log.level", &v)) {
    // statsd_exporter's (promslog's) levels.
    if (v == "debug")
      log->level = spdlog::level::debug;
    else if (v == "info")
      log->level = spdlog::level::info;
    else if (v == "warn")
      log->level = spdlog::level::warn;
    else if (v == "error")
      log->level = spdlog::level::err;
    else
      *error = fmt::format("--log.level: found \"{}\", expected debug, info, warn or error", v);
  } else if (args.option("--log-level", &v)) {
    const auto level = spdlog::level::from_str(v);
    if (level == spdlog::level::off && v != "off") {
      *error = fmt::format("--log-level: found \"{}\", expected trace, debug, info, warn or error", v);
    } else {
      log->level = level;
    }
  } else if (args.option("--log.format", &v)) {
    if (v == "logfmt")
      log->format = LogFormat::kLogfmt;
    else if (v == "json")
      log->format = LogFormat::kJson;
    else
      *error = fmt::format("--log.format: found \"{}\", expected logfmt or json", v);
  } else {
    return false;
  }
  if (!args.error().empty()) *error = args.error();
  return true;
}

std::string_view version_line() noexcept { return kVersionLine; }

std::optional<std::uint64_t> size_option(std::string_view option, std::string_view value, std::string* error) {
  if (auto n = config::parse_size(value)) return n;
  *error = fmt::format("{}: found \"{}\", expected {}", option, value, config::kSizeExpected);
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> duration_option(std::string_view option, std::string_view value,
                                                         std::string* error) {
  const auto d = config::parse_duration(value);
  if (const auto ms = d ? config::to_millis(*d) : std::nullopt) return ms;
  // The pipeline file's words for the same two problems (schema.cpp's read_millis).
  *error = fmt::format("{}: found \"{}\", expected {}", option, value,
                       d ? std::string_view("0 or at least 1ms") : config::kDurationExpected);
  return std::nullopt;
}

std::string format_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{}B", bytes);
  constexpr std::string_view kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  std::size_t i = 0;
  v /= 1024;
  while (v >= 1024 && i + 1 < std::size(kUnits)) v /= 1024, ++i;
  return fmt::format("{:.1f}{}", v, kUnits[i]);
}

std::string format_duration(std::chrono::milliseconds d) {
  const std::int64_t ms = d.count();
  if (ms < 60'000) return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000);
  const std::int64_t s = ms / 1000;
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, (s / 60) % 60);
  return fmt::format("{}d{:02}h", s / 86400, (s / 3600) % 24);
}

std::vector<std::string> PipelineSource::child_args() const {
  std::vector<std::string> out;
  if (kind == Kind::kFile) out = {"--config", file};
  if (kind == Kind::kFlags) out = flags;
  if (!run_dir.empty()) {
    out.emplace_back("--run-dir");
    out.push_back(run_dir);
  }
  if (!pipeline.empty()) {
    out.emplace_back("--pipeline");
    out.push_back(pipeline);
  }
  return out;
}

std::string PipelineSource::describe() const {
  switch (kind) {
    case Kind::kFile:
      return file;
    case Kind::kFlags:
      return "the built-in pipeline with statsd_exporter flags";
    case Kind::kBuiltin:
      break;
  }
  return "the built-in pipeline";
}

config::ConfigResult<config::PipelineConfig> PipelineSource::load() const {
  config::ConfigResult<config::PipelineConfig> p = config::default_pipeline();
  if (kind == Kind::kFile) p = config::load_pipeline(file);
  if (kind == Kind::kFlags) {
    const std::vector<std::string_view> views(flags.begin(), flags.end());
    p = config::pipeline_from_statsd_exporter_flags(views);
  }
  if (p && !run_dir.empty()) p->run_dir = run_dir;
  if (p && !pipeline.empty()) p->pipeline = pipeline;
  return p;
}

std::optional<PipelineSource> pipeline_source(std::optional<std::string> file, std::vector<std::string> flags,
                                              std::string* error) {
  PipelineSource s;
  if (file && !flags.empty()) {
    *error = "a pipeline FILE and statsd_exporter flags (" + flags.front() + ") do not mix";
    return std::nullopt;
  }
  if (file) {
    s.kind = PipelineSource::Kind::kFile;
    std::error_code ec;
    const auto abs = std::filesystem::absolute(*file, ec);
    s.file = ec ? *file : abs.lexically_normal().string();
  } else if (!flags.empty()) {
    s.kind = PipelineSource::Kind::kFlags;
    s.flags = std::move(flags);
  }
  return s;
}

bool PipelineArgs::take(ArgScanner& args) {
  std::string value;
  if (args.option("--run-dir", &value)) {
    if (!args.error().empty()) return error_ = args.error(), false;
    std::error_code ec;
    const auto abs = std::filesystem::absolute(value, ec);
    run_dir_ = ec ? value : abs.lexically_normal().string();
    value_may_follow_ = false;
    return true;
  }
  if (args.option("--pipeline", &value)) {
    if (!args.error().empty()) return error_ = args.error(), false;
    if (!config::valid_pipeline_name(value))
      return error_ = "--pipeline: found \"" + value +
                      "\", expected a directory name of letters, digits, '_', '-' and '.' (at most 39 bytes)",
             false;
    pipeline_ = value;
    value_may_follow_ = false;
    return true;
  }
  if (args.option("--config", &value)) {
    if (!args.error().empty()) return error_ = args.error(), false;
    if (file_) return error_ = "more than one pipeline FILE", false;
    file_ = value;
    value_may_follow_ = false;
    return true;
  }
  const std::string_view a = args.take();
  if (a.rfind("--", 0) == 0) {
    flags_.emplace_back(a);
    value_may_follow_ = a.find('=') == std::string_view::npos;
    return true;
  }
  if (value_may_follow_) {
    flags_.emplace_back(a);
    value_may_follow_ = false;
    return true;
  }
  if (file_) return error_ = "unexpected argument \"" + std::string(a) + "\" (a FILE was already given)", false;
  file_ = std::string(a);
  return true;
}

std::optional<PipelineSource> PipelineArgs::source() {
  auto s = pipeline_source(file_, flags_, &error_);
  if (s) {
    s->run_dir = run_dir_;
    s->pipeline = pipeline_;
  }
  return s;
}

void print_diagnostics(const config::ConfigError& error) {
  for (const config::Diagnostic& d : error.diagnostics) std::fprintf(stderr, "%s\n", d.to_string().c_str());
}

std::string_view help_text(std::string_view command) noexcept {
  if (command == "run") return kRun;
  if (command == "validate") return kValidate;
  if (command == "stat") return kStat;
  if (command == "tail") return kTail;
  if (command == "component") return kComponent;
  if (command == "ring") return kRing;
  return kOverview;
}

bool wants_help(Args args, std::string_view command) {
  for (const std::string_view a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(help_text(command).data(), stdout);
      return true;
    }
  }
  return false;
}

}  // namespace ringpipe::apps
