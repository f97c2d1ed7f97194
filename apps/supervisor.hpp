#pragma once
// Supervisor: `ringpipe run`. Owns the pipeline's rings (creates or
// re-attaches them, registers each durable reader before producers start)
// and one child process per source, processor and exporter (fork + exec of
// this executable as `ringpipe component NAME ...`). It restarts a child that
// dies, with capped exponential backoff, and gives up (exit 1) after
// max_quick_failures consecutive deaths within quick_failure_window of a
// start. SIGTERM/SIGINT stop sources first, then each reader once its input
// rings have no producer left and its lag is 0 (or drain_timeout passed).
// SIGHUP reloads the pipeline (reload.hpp: check, plan, then apply here) and
// restarts only the components whose own config or rings changed. Every change is published in the status file; the
// restarts after a death also in its stats segment `<run_dir>/<pipeline>/
// supervisor.stats` (supervisor_component_restarts_total{child}).
// Single-threaded: create() and run() on the main thread, which must have no
// other threads (signals are taken with a signalfd).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cli.hpp"
#include "ringpipe/common/result.hpp"
#include "ringpipe/config/pipeline.hpp"

namespace ringpipe::apps {

struct SupervisorOptions {
  PipelineSource source;              // reloaded on SIGHUP; children get source.child_args()
  LogOptions log;                     // children log the same way: log.child_args()
  std::vector<std::string> disabled;  // components not to run
  bool fresh = false;                 // remove the previous run's rings and state before starting
  std::chrono::milliseconds drain_timeout{10'000};
  std::chrono::milliseconds stop_timeout{5'000};  // SIGTERM, then SIGKILL after this
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{30'000};
  std::chrono::milliseconds quick_failure_window{2'000};  // a death this soon after start is "quick"
  std::uint32_t max_quick_failures = 5;
  std::string executable = "/proc/self/exe";
};

class Supervisor {
 public:
  // Opens the rings and the status file; fails with "open ring raw: path: cause".
  // Blocks SIGCHLD, SIGTERM, SIGINT and SIGHUP in the calling thread.
  [[nodiscard]] static Result<std::unique_ptr<Supervisor>> create(SupervisorOptions options,
                                                                  config::PipelineConfig pipeline);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts every component and supervises until stopped; returns the exit code.
  [[nodiscard]] int run();

 private:
  struct Impl;
  explicit Supervisor(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringpipe::apps
