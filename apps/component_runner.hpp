#pragma once
// The one lifetime of a component in its own process (`ringpipe component
// NAME`): build it, start it, wait for SIGTERM or SIGINT, stop it, with the
// same log lines and exit codes for every kind. components.cpp builds each
// part's component as a Runnable. Main thread only: the runner owns the
// process's signal mask.

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "components.hpp"
#include "ringpipe/common/result.hpp"
#include "status_file.hpp"

namespace ringpipe::apps {

// A component built for this process and not started yet. The runner calls
// start() once and, if it succeeded, stop() once, from its own thread; a
// start() that fails leaves nothing running.
class Runnable {
 public:
  virtual ~Runnable() = default;
  [[nodiscard]] virtual Status start() = 0;
  virtual void stop() = 0;
  // What the log says after start ("running, writing to ring raw") and after stop ("stopped (...)").
  [[nodiscard]] virtual std::string running() const = 0;
  [[nodiscard]] virtual std::string stopped() const = 0;
};

// Why a component could not be built: its config (kExitConfig) or what it
// needs from the machine (kExitFailure: a ring, a port, a file).
struct BuildError {
  int exit_code = kExitFailure;
  std::string message;  // logged after "<kind> <name>: "
};
using Built = tl::expected<std::unique_ptr<Runnable>, BuildError>;

[[nodiscard]] inline tl::unexpected<BuildError> config_error(std::string message) {
  return tl::unexpected(BuildError{kExitConfig, std::move(message)});
}
[[nodiscard]] inline tl::unexpected<BuildError> build_error(std::string message) {
  return tl::unexpected(BuildError{kExitFailure, std::move(message)});
}

// Blocks SIGTERM, SIGINT and SIGHUP (so call it before any thread starts),
// then build -> start -> wait for SIGTERM or SIGINT -> stop, each step logged
// as "<kind> <name>: ...". SIGHUP is logged and ignored (the supervisor
// restarts a component whose config changed). Returns kExitOk after a stop
// signal; the build's exit code when building failed; kExitFailure when start
// failed, or when a file the process maps was truncated under it (see
// UniqueMapping: it stops rather than work on pages that are no longer the
// file's, and the restart's open refuses the file with its reason).
[[nodiscard]] int run_until_stopped(ComponentKind kind, std::string_view name, const std::function<Built()>& build);

}  // namespace ringpipe::apps
