// `ringpipe validate FILE | --mapping FILE`: every problem of a pipeline file
// or of a statsd_exporter mapping file, then exit 0 or 1.

#include <cstdio>

#include "commands.hpp"
#include "components.hpp"
#include "ringpipe/config/mapping.hpp"

namespace ringpipe::apps {
namespace {

int usage(const char* message) {
  std::fprintf(stderr, "ringpipe validate: %s\n(see ringpipe validate --help)\n", message);
  return kExitUsage;
}

int validate_mapping(const std::string& file) {
  auto mapping = config::load_mapping_file(file);
  if (!mapping) {
    print_diagnostics(mapping.error());
    return kExitFailure;
  }
  std::printf("%s: ok (mapping file: %zu mapping rules)\n", file.c_str(), mapping->mappings.size());
  return kExitOk;
}

}  // namespace

int validate_command(Args args) {
  if (wants_help(args, "validate")) return kExitOk;
  ArgScanner a(args);
  std::string mapping;
  if (a.option("--mapping", &mapping)) {
    if (!a.error().empty()) return usage("--mapping needs a FILE");
    if (!a.done()) return usage("expected only --mapping FILE");
    return validate_mapping(mapping);
  }
  if (args.size() != 1 || args[0].rfind("--", 0) == 0) return usage("expected exactly one FILE, or --mapping FILE");
  const std::string file(args[0]);
  auto pipeline = config::load_pipeline(file);
  if (!pipeline) {
    print_diagnostics(pipeline.error());
    return kExitFailure;
  }
  std::printf("%s: ok (pipeline %s: %zu rings, %zu sources, %zu processors, %zu exporters)\n", file.c_str(),
              pipeline->pipeline.c_str(), pipeline->rings.size(), pipeline->sources.size(), pipeline->processors.size(),
              pipeline->exporters.size());
  return kExitOk;
}

}  // namespace ringpipe::apps
