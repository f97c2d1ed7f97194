#pragma once
// Human-readable ring records for `ringpipe tail` and `ringpipe ring tail`:
// sample batches and metric batches are decoded (bounds-checked; a malformed
// record says why), any other type is printed as hex. Pure functions, plus a
// tail loop owned by the calling thread.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "cli.hpp"
#include "ringpipe/ring/ring.hpp"

namespace ringpipe::apps {

// Appends one record, one header line plus one line per sample or entry.
void format_record(const ring::RecordView& record, std::string& out);

struct TailOptions {
  ring::StartAt start = ring::StartAt::kLatest;
  std::optional<std::uint64_t> count;                 // stop after this many records
  std::optional<std::chrono::milliseconds> duration;  // stop after this long
};

// Attaches a non-durable reader to `path` and prints records to `out` until
// SIGINT/SIGTERM, count or duration. Returns the exit code.
[[nodiscard]] int tail_ring(const std::string& path, const TailOptions& options, std::FILE* out);

// Shared by both tail commands: consumes --from, --count or --duration when
// the scanner is at one and returns true; *error is set on a bad value.
[[nodiscard]] bool tail_option(ArgScanner& args, TailOptions& options, std::string* error);

}  // namespace ringpipe::apps
