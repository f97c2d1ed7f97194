// `ringpipe component NAME [--config FILE | flags]`: one component, alone.

#include <sys/prctl.h>

#include <cstdio>

#include "commands.hpp"
#include "components.hpp"
#include "ringpipe/common/log.hpp"

namespace ringpipe::apps {

int component_command(Args args) {
  if (wants_help(args, "component")) return kExitOk;
  ArgScanner a(args);
  PipelineArgs pipeline_args;
  std::optional<std::string> name;
  LogOptions log;
  ListenFds listen_fds;
  std::string why;
  std::string v;
  while (!a.done()) {
    if (!name && a.current().rfind("--", 0) != 0) {
      name = std::string(a.take());
    } else if (a.option("--listen-fd", &v)) {
      if (!ingest::parse_listen_fd(v, listen_fds)) {
        std::fprintf(stderr, "ringpipe component: --listen-fd: found \"%s\", expected KEY=FD with FD >= 3\n",
                     v.c_str());
        return kExitUsage;
      }
    } else if (log_option(a, &log, &why)) {
      if (!why.empty()) {
        std::fprintf(stderr, "ringpipe component: %s\n(see ringpipe component --help)\n", why.c_str());
        return kExitUsage;
      }
    } else if (!pipeline_args.take(a)) {
      std::fprintf(stderr, "ringpipe component: %s\n", pipeline_args.error().c_str());
      return kExitConfig;
    }
  }
  if (!name) {
    std::fprintf(stderr, "ringpipe component: missing NAME\n(see ringpipe component --help)\n");
    return kExitConfig;
  }
  // ps and top show which component a process is (comm holds 15 bytes).
  const std::string title = "ringpipe:" + *name;
  ::prctl(PR_SET_NAME, title.c_str(), 0, 0, 0);
  init_logging(*name, log.level, log.format);

  auto source = pipeline_args.source();
  if (!source) {
    spdlog::error("component {}: {}", *name, pipeline_args.error());
    return kExitConfig;
  }
  auto pipeline = source->load();
  if (!pipeline) {
    for (const auto& d : pipeline.error().diagnostics) spdlog::error("component {}: {}", *name, d.to_string());
    return kExitConfig;
  }
  return run_component(*pipeline, *name, listen_fds);
}

}  // namespace ringpipe::apps
