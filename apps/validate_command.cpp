// `ringpipe validate FILE`: every problem of a pipeline file, then exit 0 or 1.

#include <cstdio>

#include "commands.hpp"
#include "components.hpp"

namespace ringpipe::apps {

int validate_command(Args args) {
  if (wants_help(args, "validate")) return kExitOk;
  if (args.size() != 1 || args[0].rfind("--", 0) == 0) {
    std::fprintf(stderr, "ringpipe validate: expected exactly one FILE\n(see ringpipe validate --help)\n");
    return kExitUsage;
  }
  const std::string file(args[0]);
  auto pipeline = config::load_pipeline(file);
  if (!pipeline) {
    print_diagnostics(pipeline.error());
    return kExitFailure;
  }
  std::printf("%s: ok (pipeline %s: %zu rings, %zu sources, %zu processors, %zu exporters)\n", file.c_str(),
              pipeline->pipeline.c_str(), pipeline->rings.size(), pipeline->sources.size(),
              pipeline->processors.size(), pipeline->exporters.size());
  return kExitOk;
}

}  // namespace ringpipe::apps
