#include "worker.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

namespace ringpipe::ingest {

Worker::Worker(const IngestConfig& config, std::unique_ptr<BatchTarget> target, IngestStats& stats,
               RateLimiter& error_log)
    : name_(config.name),
      parser_(config.parser),
      target_(std::move(target)),
      stats_(stats),
      error_log_(error_log),
      writer_(std::span<std::byte>{}, config.source_id, 0),
      out_(nullptr, &Worker::rotate, this),
      relabel_(config.relabel) {
  if (!relabel_.empty()) out_.set_relabel(&relabel_, &relabel_scratch_);
}

bool Worker::claim() noexcept {
  const std::span<std::byte> space = bytes_hint_ > 0 ? target_->claim_at_least(bytes_hint_) : target_->claim();
  if (space.size() < sizeof(sample::BatchHeader)) {
    ++refused_claims_;
    out_.set_writer(nullptr);
    return false;
  }
  writer_.reset(space, received_ns_);
  out_.set_writer(&writer_);
  return true;
}

void Worker::commit() noexcept {
  if (writer_.empty()) return;  // an unfinished claim is abandoned, which is allowed
  target_->commit(writer_.finish());
  ++records_;
  writer_.reset(std::span<std::byte>{}, received_ns_);
}

bool Worker::rotate(void* self) noexcept {
  auto* w = static_cast<Worker*>(self);
  w->commit();
  return w->claim();
}

void Worker::begin(std::int64_t received_ns, std::size_t bytes_hint) noexcept {
  received_ns_ = received_ns;
  bytes_hint_ = bytes_hint;
  claim();
}

void Worker::end() noexcept {
  commit();
  bytes_hint_ = 0;
  out_.set_writer(nullptr);
  flush_counters();
}

void format_sender(const sockaddr* from, socklen_t from_len, std::span<char> out) noexcept {
  if (out.empty()) return;
  out[0] = '\0';
  if (from == nullptr || from_len < static_cast<socklen_t>(sizeof(sa_family_t))) {
    std::snprintf(out.data(), out.size(), "unknown");
    return;
  }
  char host[INET6_ADDRSTRLEN] = {};
  switch (from->sa_family) {
    case AF_INET: {
      sockaddr_in a{};
      std::memcpy(&a, from, std::min<std::size_t>(sizeof a, static_cast<std::size_t>(from_len)));
      ::inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
      std::snprintf(out.data(), out.size(), "%s:%u", host, static_cast<unsigned>(ntohs(a.sin_port)));
      return;
    }
    case AF_INET6: {
      sockaddr_in6 a{};
      std::memcpy(&a, from, std::min<std::size_t>(sizeof a, static_cast<std::size_t>(from_len)));
      ::inet_ntop(AF_INET6, &a.sin6_addr, host, sizeof host);
      std::snprintf(out.data(), out.size(), "[%s]:%u", host, static_cast<unsigned>(ntohs(a.sin6_port)));
      return;
    }
    case AF_UNIX: {
      const std::size_t path_off = offsetof(sockaddr_un, sun_path);
      const auto len = static_cast<std::size_t>(from_len);
      if (len <= path_off) {
        std::snprintf(out.data(), out.size(), "unix (unnamed)");
        return;
      }
      const char* path = reinterpret_cast<const char*>(from) + path_off;
      const std::size_t n = strnlen(path, std::min(len - path_off, sizeof(sockaddr_un::sun_path)));
      if (n == 0) {
        std::snprintf(out.data(), out.size(), "unix (unnamed)");
      } else {
        std::snprintf(out.data(), out.size(), "unix:%.*s", static_cast<int>(n), path);
      }
      return;
    }
    default:
      std::snprintf(out.data(), out.size(), "unknown (family %d)", static_cast<int>(from->sa_family));
      return;
  }
}

void Worker::parse(std::string_view packet, const sockaddr* from, socklen_t from_len) noexcept {
  if (example_.kept) {
    parser_.parse_packet(packet, out_, counters_);
    return;
  }
  const std::uint64_t before = counters_.total_errors();
  parser_.parse_packet(packet, out_, counters_);
  if (counters_.total_errors() != before) keep_example(packet, from, from_len);
}

// On the error path only, once per batch: finds the first line the parser
// refuses on its own (a JSON document is one "line") and keeps it.
void Worker::keep_example(std::string_view packet, const sockaddr* from, socklen_t from_len) noexcept {
  std::string_view line = packet;
  ParseError reason = ParseError::kCount;
  if (parser_.protocol() != Protocol::kJson) {
    SampleOutput scratch;  // no writer: nothing is written twice
    std::size_t start = 0;
    while (start <= packet.size()) {
      const std::size_t nl = packet.find('\n', start);
      const std::string_view l =
          packet.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
      ParseCounters c;
      parser_.parse_packet(l, scratch, c);
      if (c.total_errors() != 0) {
        line = l;
        for (std::size_t i = 0; i < kParseErrorCount; ++i) {
          if (c.errors[i] != 0) {
            reason = static_cast<ParseError>(i);
            break;
          }
        }
        break;
      }
      if (nl == std::string_view::npos) break;
      start = nl + 1;
    }
  }
  if (reason == ParseError::kCount) {  // no single line fails alone: name the batch's last reason
    for (std::size_t i = 0; i < kParseErrorCount; ++i)
      if (counters_.errors[i] != 0) reason = static_cast<ParseError>(i);
  }
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  example_.kept = true;
  example_.reason = reason;
  example_.full_len = line.size();
  example_.line_len = std::min(line.size(), kExampleBytes);
  std::memcpy(example_.line.data(), line.data(), example_.line_len);
  format_sender(from, from_len, example_.sender);
}

namespace {

// The kept line for a log: printable ASCII as is, the rest as \xNN.
std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out.push_back(ch);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

void Worker::flush_counters() noexcept {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  if (out_.dropped() > 0 && refused_claims_ > 0) {
    target_->count_dropped(refused_claims_);
    stats_.records_dropped.fetch_add(refused_claims_, kRelaxed);
  }
  refused_claims_ = 0;
  if (counters_.lines) stats_.lines.fetch_add(counters_.lines, kRelaxed);
  if (counters_.samples) stats_.samples.fetch_add(counters_.samples, kRelaxed);
  if (counters_.skipped_fields) stats_.skipped_fields.fetch_add(counters_.skipped_fields, kRelaxed);
  if (out_.written()) stats_.samples_written.fetch_add(out_.written(), kRelaxed);
  if (out_.dropped()) stats_.samples_dropped.fetch_add(out_.dropped(), kRelaxed);
  if (out_.too_large()) stats_.samples_too_large.fetch_add(out_.too_large(), kRelaxed);
  if (out_.relabel_dropped()) stats_.relabel_dropped.fetch_add(out_.relabel_dropped(), kRelaxed);
  if (out_.relabel_invalid_name()) stats_.relabel_invalid_name.fetch_add(out_.relabel_invalid_name(), kRelaxed);
  if (records_) stats_.records_written.fetch_add(records_, kRelaxed);
  records_ = 0;
  std::uint64_t errors = 0;
  for (std::size_t i = 0; i < kParseErrorCount; ++i) {
    if (counters_.errors[i] == 0) continue;
    stats_.parse_errors[i].fetch_add(counters_.errors[i], kRelaxed);
    errors += counters_.errors[i];
  }
  const std::uint64_t dropped = out_.dropped();
  if ((errors > 0 || dropped > 0) && error_log_.allow()) {
    try {  // formatting allocates; a failure only loses this warning
      std::string by_reason;
      for (std::size_t i = 0; i < kParseErrorCount; ++i) {
        if (counters_.errors[i] == 0) continue;
        if (!by_reason.empty()) by_reason += ", ";
        by_reason +=
            std::string(parse_error_name(static_cast<ParseError>(i))) + " " + std::to_string(counters_.errors[i]);
      }
      std::string example = "none";
      if (example_.kept) {
        example = std::string(example_.reason == ParseError::kCount ? std::string_view("unknown")
                                                                    : parse_error_name(example_.reason)) +
                  ": \"" + printable(std::string_view(example_.line.data(), example_.line_len)) + "\"";
        if (example_.full_len > example_.line_len)
          example +=
              " (first " + std::to_string(example_.line_len) + " of " + std::to_string(example_.full_len) + " bytes)";
        example += " from " + std::string(example_.sender.data());
      }
      spdlog::warn(
          "ingest {}: {} malformed lines or samples ({}; first: {}), {} samples dropped for lack of ring space; "
          "{} similar warnings suppressed",
          name_, errors, errors ? by_reason : "none", example, dropped, error_log_.take_suppressed());
    } catch (...) {
    }
  }
  example_.kept = false;
  counters_ = ParseCounters{};
  out_.reset_counts();
}

}  // namespace ringpipe::ingest
