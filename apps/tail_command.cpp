// `ringpipe tail RING [FILE | flags]`: decoded records of a pipeline ring.

#include <cstdio>

#include "commands.hpp"
#include "components.hpp"
#include "record_print.hpp"

namespace ringpipe::apps {

int tail_command(Args args) {
  if (wants_help(args, "tail")) return kExitOk;
  ArgScanner a(args);
  PipelineArgs pipeline_args;
  TailOptions options;
  std::optional<std::string> ring_name;
  std::string error;
  while (!a.done()) {
    if (tail_option(a, options, &error)) {
      if (!error.empty()) break;
    } else if (!error.empty()) {
      break;
    } else if (!ring_name && a.current().rfind("--", 0) != 0) {
      ring_name = std::string(a.take());
    } else if (!pipeline_args.take(a)) {
      error = pipeline_args.error();
      break;
    }
  }
  if (error.empty() && !ring_name) error = "missing RING";
  auto source = pipeline_args.source();
  if (error.empty() && !source) error = pipeline_args.error();
  if (!error.empty()) {
    std::fprintf(stderr, "ringpipe tail: %s\n(see ringpipe tail --help)\n", error.c_str());
    return kExitUsage;
  }
  auto pipeline = source->load();
  if (!pipeline) {
    print_diagnostics(pipeline.error());
    return kExitConfig;
  }
  if (!pipeline->find_ring(*ring_name)) {
    std::string names;
    for (const auto& r : pipeline->rings) names += (names.empty() ? "" : ", ") + r.name;
    std::fprintf(stderr, "ringpipe tail: pipeline %s has no ring \"%s\" (rings: %s)\n", pipeline->pipeline.c_str(),
                 ring_name->c_str(), names.c_str());
    return kExitUsage;
  }
  return tail_ring(pipeline->ring_path(*ring_name), options, stdout);
}

}  // namespace ringpipe::apps
