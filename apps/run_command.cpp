// `ringpipe run [FILE | statsd_exporter flags]`: the supervisor.

#include <charconv>
#include <cstdio>

#include "commands.hpp"
#include "components.hpp"
#include "ringpipe/common/log.hpp"
#include "supervisor.hpp"

namespace ringpipe::apps {
namespace {

int usage(const std::string& message) {
  std::fprintf(stderr, "ringpipe run: %s\n(see ringpipe run --help)\n", message.c_str());
  return kExitUsage;
}

// An option that is neither run's nor statsd_exporter's: say what is accepted.
int unknown_option(const std::string& option) {
  std::fprintf(stderr,
               "ringpipe run: unknown option %s\n"
               "run's own options: --config FILE, --run-dir DIR, --pipeline NAME, --fresh, --disable NAME,\n"
               "  --drain-timeout DURATION, --max-quick-failures N, --log-level LEVEL, --check-config, --version,\n"
               "  --help\n"
               "and statsd_exporter's flags: --statsd.listen-udp, --statsd.listen-tcp, --statsd.listen-unixgram,\n"
               "  --statsd.mapping-config, --web.listen-address, --web.telemetry-path, --log.level, --log.format,\n"
               "  ... (every one and what ringpipe does with it: docs/migrating-from-statsd_exporter.md)\n"
               "(see ringpipe run --help)\n",
               option.c_str());
  return kExitUsage;
}

// The statsd_exporter-looking arguments that are not statsd_exporter flags.
const std::string* first_unknown_flag(const std::vector<std::string>& flags) {
  for (const std::string& f : flags) {
    if (f.rfind("--", 0) == 0 && !config::is_statsd_exporter_flag(f)) return &f;
  }
  return nullptr;
}

std::size_t mapping_rules(const config::PipelineConfig& p) {
  std::size_t n = 0;
  for (const auto& proc : p.processors) n += proc.mapping ? proc.mapping->mappings.size() : 0;
  return n;
}

}  // namespace

int run_command(Args args) {
  if (wants_help(args, "run")) return kExitOk;
  for (const std::string_view a : args) {
    if (a == "--version") return std::fputs(version_line().data(), stdout), kExitOk;
  }
  ArgScanner a(args);
  PipelineArgs pipeline_args;
  SupervisorOptions options;
  LogOptions log;
  bool check_config = false;
  std::string v;
  std::string why;
  while (!a.done()) {
    if (a.option("--disable", &v)) {
      options.disabled.push_back(v);
    } else if (a.option("--drain-timeout", &v)) {
      auto d = duration_option("--drain-timeout", v, &why);
      if (!d) return usage(why);
      options.drain_timeout = *d;
    } else if (a.option("--max-quick-failures", &v)) {
      std::uint32_t n = 0;
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc() || end != v.data() + v.size() || n == 0)
        return usage("--max-quick-failures: found \"" + v + "\", expected a number >= 1");
      options.max_quick_failures = n;
    } else if (log_option(a, &log, &why)) {
      if (!why.empty()) return usage(why);
    } else if (a.flag("--fresh")) {
      options.fresh = true;
    } else if (bool_flag(a, "--check-config", &check_config, &why)) {
      if (!why.empty()) return usage(why);
    } else if (!a.error().empty()) {
      return usage(a.error());
    } else if (!pipeline_args.take(a)) {
      return usage(pipeline_args.error());
    }
  }
  if (!a.error().empty()) return usage(a.error());
  if (const std::string* f = first_unknown_flag(pipeline_args.flags())) return unknown_option(*f);
  auto source = pipeline_args.source();
  if (!source) return usage(pipeline_args.error());

  init_logging("supervisor", log.level, log.format);
  auto pipeline = source->load();
  if (!pipeline) {
    print_diagnostics(pipeline.error());
    if (check_config) {
      std::fprintf(stderr, "ringpipe: configuration invalid: %s: %zu problems; nothing started\n",
                   source->describe().c_str(), pipeline.error().diagnostics.size());
    } else {
      spdlog::error("{}: invalid pipeline; nothing started", source->describe());
    }
    return kExitConfig;
  }
  const auto all = pipeline_components(*pipeline);
  for (const std::string& name : options.disabled) {
    if (!find_component(all, name)) return usage("--disable " + name + ": the pipeline has no such component");
  }
  if (check_config) {
    std::printf(
        "ringpipe: configuration ok: %s: pipeline %s, %zu rings, %zu sources, %zu processors, %zu exporters, "
        "%zu mapping rules; nothing started\n",
        source->describe().c_str(), pipeline->pipeline.c_str(), pipeline->rings.size(), pipeline->sources.size(),
        pipeline->processors.size(), pipeline->exporters.size(), mapping_rules(*pipeline));
    return kExitOk;
  }
  options.source = std::move(*source);
  options.log = log;
  spdlog::info("pipeline {} from {}: {} rings, {} components, run dir {}", pipeline->pipeline,
               options.source.describe(), pipeline->rings.size(), all.size() - options.disabled.size(),
               pipeline->run_dir);
  auto supervisor = Supervisor::create(std::move(options), std::move(*pipeline));
  if (!supervisor) {
    const std::error_code code = supervisor.error().code;
    if (code == std::errc::address_in_use) {
      // Refused before anything started: restarting cannot help while the address is taken.
      spdlog::error("{}; address already in use: stop what listens there or choose another address; nothing started",
                    supervisor.error().message());
      return kExitConfig;
    }
    if (code == std::errc::device_or_resource_busy || code == std::errc::no_space_on_device) {
      spdlog::error("{}; nothing started", supervisor.error().context);
      return kExitConfig;
    }
    spdlog::error("{}", supervisor.error().message());
    return kExitFailure;
  }
  return (*supervisor)->run();
}

}  // namespace ringpipe::apps
