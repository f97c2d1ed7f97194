#include "component_runner.hpp"

#include <signal.h>
#include <string.h>

#include <spdlog/spdlog.h>

#include "ringpipe/common/mapping.hpp"

namespace ringpipe::apps {
namespace {

// Signals a component waits for; blocked in every thread, taken by sigtimedwait.
sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

// Blocks until SIGTERM or SIGINT (kExitOk) or a lost mapping (kExitFailure).
int wait_for_stop(const sigset_t& set, std::string_view name) {
  const timespec tick{0, 200'000'000};
  for (;;) {
    siginfo_t info{};
    const int sig = ::sigtimedwait(&set, &info, &tick);
    if (sig < 0) {  // EINTR, or a tick without a signal
      if (auto lost = lost_mapping()) {
        spdlog::error("{}: {} was truncated by another process while mapped here; stopping", name, *lost);
        return kExitFailure;
      }
      continue;
    }
    if (sig == SIGHUP) {
      spdlog::info("{}: SIGHUP ignored (a component reloads by restarting)", name);
      continue;
    }
    spdlog::info("{}: {} received, stopping", name, ::strsignal(sig));
    return kExitOk;
  }
}

}  // namespace

int run_until_stopped(ComponentKind kind, std::string_view name, const std::function<Built()>& build) {
  const sigset_t signals = stop_signals();
  ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  const std::string who = fmt::format("{} {}", component_kind_name(kind), name);
  Built component = build();
  if (!component) {
    spdlog::error("{}: {}", who, component.error().message);
    return component.error().exit_code;
  }
  if (auto st = (*component)->start(); !st) {
    spdlog::error("{}: {}", who, st.error().message());
    return kExitFailure;
  }
  spdlog::info("{}: {}", who, (*component)->running());
  const int exit_code = wait_for_stop(signals, name);
  (*component)->stop();
  spdlog::info("{}: {}", who, (*component)->stopped());
  return exit_code;
}

}  // namespace ringpipe::apps
