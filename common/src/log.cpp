#include "ringpipe/common/log.hpp"

#include <time.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace ringpipe {
namespace {

std::string_view level_name(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      break;
  }
  return "off";
}

// Appends `s` with the escapes both JSON strings and logfmt's quoted values
// take: \" \\ \n \r \t, and \u00XX for the other control bytes.
void append_escaped(std::string_view s, spdlog::memory_buf_t& dest) {
  for (const char c : s) {
    switch (c) {
      case '"':
        dest.append(std::string_view("\\\""));
        break;
      case '\\':
        dest.append(std::string_view("\\\\"));
        break;
      case '\n':
        dest.append(std::string_view("\\n"));
        break;
      case '\r':
        dest.append(std::string_view("\\r"));
        break;
      case '\t':
        dest.append(std::string_view("\\t"));
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          fmt::format_to(std::back_inserter(dest), "\\u{:04x}", static_cast<unsigned>(c));
        } else {
          dest.push_back(c);
        }
    }
  }
}

// One line per message, as statsd_exporter's --log.format logfmt or json
// writes it: time (UTC, milliseconds), level, component, pid, message.
class StructuredFormatter final : public spdlog::formatter {
 public:
  StructuredFormatter(LogFormat format, std::string component)
      : format_(format), component_(std::move(component)), pid_(::getpid()) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const time_t secs = static_cast<time_t>(std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count());
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000;
    tm utc{};
    ::gmtime_r(&secs, &utc);
    const std::string ts = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900, utc.tm_mon + 1,
                                       utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, ms);
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    auto out = std::back_inserter(dest);
    if (format_ == LogFormat::kJson) {
      fmt::format_to(out, "{{\"ts\":\"{}\",\"level\":\"{}\",\"component\":\"", ts, level_name(msg.level));
      append_escaped(component_, dest);
      fmt::format_to(out, "\",\"pid\":{},\"msg\":\"", pid_);
      append_escaped(payload, dest);
      dest.append(std::string_view("\"}\n"));
    } else {
      fmt::format_to(out, "ts={} level={} component=", ts, level_name(msg.level));
      append_escaped(component_, dest);  // component names have no spaces or '='
      fmt::format_to(out, " pid={} msg=\"", pid_);
      append_escaped(payload, dest);
      dest.append(std::string_view("\"\n"));
    }
  }

  [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<StructuredFormatter>(format_, component_);
  }

 private:
  LogFormat format_;
  std::string component_;
  pid_t pid_;
};

}  // namespace

void init_logging(std::string_view component, spdlog::level::level_enum level, LogFormat format) {
  auto logger = spdlog::stderr_color_mt("ringpipe");
  if (format == LogFormat::kText) {
    logger->set_pattern(std::string("%Y-%m-%dT%H:%M:%S.%e %^%l%$ ringpipe[") + std::string(component) + " %P] %v");
  } else {
    logger->set_formatter(std::make_unique<StructuredFormatter>(format, std::string(component)));
  }
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
