#include "worker.hpp"

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
      out_(nullptr, &Worker::rotate, this) {}

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
  if (records_) stats_.records_written.fetch_add(records_, kRelaxed);
  records_ = 0;
  std::uint64_t errors = 0;
  std::size_t last = 0;
  for (std::size_t i = 0; i < kParseErrorCount; ++i) {
    if (counters_.errors[i] == 0) continue;
    stats_.parse_errors[i].fetch_add(counters_.errors[i], kRelaxed);
    errors += counters_.errors[i];
    last = i;
  }
  const std::uint64_t dropped = out_.dropped();
  if ((errors > 0 || dropped > 0) && error_log_.allow()) {
    spdlog::warn(
        "ingest {}: {} malformed lines or samples (e.g. {}), {} samples dropped for lack of ring space; "
        "{} similar warnings suppressed",
        name_, errors, errors ? parse_error_name(static_cast<ParseError>(last)) : "none", dropped,
        error_log_.take_suppressed());
  }
  counters_ = ParseCounters{};
  out_.reset_counts();
}

}  // namespace ringpipe::ingest
