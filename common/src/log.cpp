#include "ringpipe/common/log.hpp"

#include <time.h>

#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace ringpipe {

void init_logging(std::string_view component, spdlog::level::level_enum level) {
  auto logger = spdlog::stderr_color_mt("ringpipe");
  logger->set_pattern(std::string("%Y-%m-%dT%H:%M:%S.%e %^%l%$ ringpipe[") + std::string(component) +
                      " %P] %v");
  logger->set_level(level);
  spdlog::set_default_logger(std::move(logger));
}

bool RateLimiter::allow() noexcept {
  const std::int64_t now = monotonic_ns();
  std::int64_t next = next_ns_.load(std::memory_order_relaxed);
  if (now >= next && next_ns_.compare_exchange_strong(next, now + interval_ns_, std::memory_order_relaxed)) {
    return true;
  }
  suppressed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t realtime_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace ringpipe
