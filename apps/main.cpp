// ringpipe: one executable, subcommands in their own files (commands.hpp).

#include <malloc.h>

#include <cstdio>
#include <string_view>
#include <vector>

#include "commands.hpp"
#include "components.hpp"

int main(int argc, char** argv) {
  using namespace ringpipe::apps;
  // Every process runs for weeks, and some make buffers of many megabytes
  // now and then (a scrape's page, index arrays and gzip pieces; a table's
  // rehash). glibc's default raises the size served by mmap up to 32 MiB as
  // such buffers are freed, after which they come from the per-thread heaps
  // and stay there once freed: an exporter of 1M series kept 55 MB more
  // after five scrapes. A fixed threshold keeps big buffers in their own
  // mappings, which free() gives back.
  (void)mallopt(M_MMAP_THRESHOLD, 4 << 20);
  const std::vector<std::string_view> all(argv + 1, argv + argc);
  const Args args(all);
  if (args.empty() || args[0].rfind("--", 0) == 0) {  // statsd_exporter's command line: a drop-in
    if (!args.empty() && args[0] == "--help") return std::fputs(help_text("").data(), stdout), kExitOk;
    return run_command(args);
  }
  const std::string_view command = args[0];
  const Args rest = args.subspan(1);
  if (command == "run") return run_command(rest);
  if (command == "validate") return validate_command(rest);
  if (command == "stat") return stat_command(rest);
  if (command == "tail") return tail_command(rest);
  if (command == "component") return component_command(rest);
  if (command == "ring") return ring_command(rest);
  if (command == "help" || command == "-h") {
    std::fputs(help_text(rest.empty() ? "" : rest[0]).data(), stdout);
    return kExitOk;
  }
  std::fprintf(stderr, "ringpipe: unknown command \"%.*s\"\n\n%s", static_cast<int>(command.size()), command.data(),
               help_text("").data());
  return kExitUsage;
}
