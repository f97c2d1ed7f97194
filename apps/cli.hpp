#pragma once
// Command-line plumbing shared by the subcommands: argument scanning, units,
// help texts, and where a command's pipeline comes from (a file, the
// built-in default, or statsd_exporter's flags). Plain functions and values;
// thread-safe.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringpipe/common/log.hpp"
#include "ringpipe/config/pipeline.hpp"

namespace ringpipe::apps {

using Args = std::span<const std::string_view>;

// Walks a command's arguments: options as `--name value` or `--name=value`.
// Not thread-safe (one scanner per command).
class ArgScanner {
 public:
  explicit ArgScanner(Args args) noexcept : args_(args) {}
  [[nodiscard]] bool done() const noexcept { return i_ >= args_.size(); }
  // The current argument (before any '=').
  [[nodiscard]] std::string_view current() const noexcept;
  // True (and consumed) when the current argument is the flag `name`.
  [[nodiscard]] bool flag(std::string_view name) noexcept;
  // True when the current argument is option `name`; its value goes to *value
  // (consumed with it). A missing value sets error().
  [[nodiscard]] bool option(std::string_view name, std::string* value) noexcept;
  // Consumes the current argument as is.
  std::string_view take() noexcept { return args_[i_++]; }
  [[nodiscard]] const std::string& error() const noexcept { return error_; }

 private:
  Args args_;
  std::size_t i_ = 0;
  std::string error_;
};

// A boolean flag as kingpin takes it: `--name`, `--no-name`, `--name=true|false`.
// True (and consumed) when the current argument is one of these; *value is
// set, or *error when the value is neither true nor false.
[[nodiscard]] bool bool_flag(ArgScanner& args, std::string_view name, bool* value, std::string* error);

// How the process logs: statsd_exporter's --log.level (debug, info, warn,
// error) and --log.format (logfmt, json), or run's own --log-level (trace too).
struct LogOptions {
  spdlog::level::level_enum level = spdlog::level::info;
  LogFormat format = LogFormat::kText;
  // The options a child is started with to log the same way (none for the defaults).
  [[nodiscard]] std::vector<std::string> child_args() const;
};
// True (and consumed) when the current argument is --log.level, --log.format
// or --log-level; a bad or missing value sets *error to one line naming the
// accepted values.
[[nodiscard]] bool log_option(ArgScanner& args, LogOptions* log, std::string* error);

// "ringpipe 0.1.0 (git v0.1.0-3-gabcdef0)\n": CMake's project version and
// `git describe` of the source tree when it was configured.
[[nodiscard]] std::string_view version_line() noexcept;

// The value of a size or duration option, read as the pipeline file reads
// one (ringpipe/config/units.hpp), so a flag and a key never differ: sizes
// "64MiB", "512KiB", "10MB" or bare bytes; durations "500ms", "10s", "1m30s"
// kept in milliseconds, where a bare number other than 0 is refused (it
// could mean seconds or milliseconds). nullopt with *error set to
// "<option>: found \"<value>\", expected ..." when the value is not one.
[[nodiscard]] std::optional<std::uint64_t> size_option(std::string_view option, std::string_view value,
                                                       std::string* error);
[[nodiscard]] std::optional<std::chrono::milliseconds> duration_option(std::string_view option, std::string_view value,
                                                                       std::string* error);
// 1536 -> "1.5KiB".
[[nodiscard]] std::string format_bytes(std::uint64_t bytes);
// 5025 ms -> "5.0s", 3 h -> "3h00m".
[[nodiscard]] std::string format_duration(std::chrono::milliseconds d);

// Where a pipeline comes from. A child component gets child_args() so it
// loads exactly the pipeline its supervisor loaded: `--config ABSOLUTE_PATH`,
// the statsd_exporter flags as given, or nothing (the built-in default).
struct PipelineSource {
  enum class Kind { kBuiltin, kFile, kFlags };
  Kind kind = Kind::kBuiltin;
  std::string file;                // kFile: absolute path
  std::vector<std::string> flags;  // kFlags: statsd_exporter's flags, as given
  std::string run_dir;             // --run-dir: replaces the pipeline's run_dir ("" = keep)
  std::string pipeline;            // --pipeline: replaces the pipeline's name ("" = keep)

  [[nodiscard]] std::vector<std::string> child_args() const;
  [[nodiscard]] std::string describe() const;
  // Loads (and validates) the pipeline; every problem as a diagnostic.
  [[nodiscard]] config::ConfigResult<config::PipelineConfig> load() const;
};

// Builds a PipelineSource from what a command left over: at most one FILE
// (positional or --config), or statsd_exporter flags (any `--x` argument and
// the values after them). Mixing a file with flags is an error.
[[nodiscard]] std::optional<PipelineSource> pipeline_source(std::optional<std::string> file,
                                                            std::vector<std::string> flags, std::string* error);

// Collects a command's pipeline arguments, one call per argument the command
// did not recognise: `--config FILE`, a positional FILE, `--run-dir DIR`, or
// statsd_exporter flags (a `--x` argument, and a value after a `--x` without '=').
class PipelineArgs {
 public:
  // Consumes the scanner's current argument. False (with error()) on a second FILE.
  [[nodiscard]] bool take(ArgScanner& args);
  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  // The source these arguments name; nullopt (with error()) when they conflict.
  [[nodiscard]] std::optional<PipelineSource> source();
  // The `--x` arguments (and values) taken as statsd_exporter flags so far.
  [[nodiscard]] const std::vector<std::string>& flags() const noexcept { return flags_; }

 private:
  std::optional<std::string> file_;
  std::vector<std::string> flags_;
  std::string run_dir_;
  std::string pipeline_;
  bool value_may_follow_ = false;
  std::string error_;
};

// Prints every diagnostic, one "file:line:column: message" line each, to stderr.
void print_diagnostics(const config::ConfigError& error);

// The help text of a command ("" = the overview).
[[nodiscard]] std::string_view help_text(std::string_view command) noexcept;
// True when args ask for help (--help, -h); prints the command's help then.
[[nodiscard]] bool wants_help(Args args, std::string_view command);

}  // namespace ringpipe::apps
