#include "ringpipe/stats/publisher.hpp"

#include <algorithm>
#include <system_error>
#include <utility>

#include "ringpipe/common/assert.hpp"

namespace ringpipe::stats {

Publisher::Publisher(StatsSegment& segment, std::function<void()> refresh)
    : segment_(&segment), refresh_(std::move(refresh)) {}

Publisher::Publisher(std::shared_ptr<StatsSegment> segment, std::function<void()> refresh)
    : owned_(std::move(segment)), segment_(owned_.get()), refresh_(std::move(refresh)) {
  RINGPIPE_ASSERT(segment_ != nullptr, "a publisher needs a segment to publish into");
}

Publisher::~Publisher() {
  if (thread_.joinable()) stop();
}

Status Publisher::link(Result<std::atomic<std::uint64_t>*> cell, const std::atomic<std::uint64_t>& from, Copy copy) {
  if (!cell) return tl::unexpected(cell.error());
  links_.push_back({&from, *cell, copy, 0});
  return {};
}

Status Publisher::add_counter(const std::atomic<std::uint64_t>& from, std::string_view name, std::string_view help,
                              const StatsLabels& labels) {
  return link(segment_->register_counter(name, help, labels), from, Copy::kGrowth);
}

Status Publisher::add_gauge(const std::atomic<std::uint64_t>& from, std::string_view name, std::string_view help,
                            const StatsLabels& labels, GaugeCopy copy) {
  return link(segment_->register_gauge(name, help, labels), from,
              copy == GaugeCopy::kValue ? Copy::kValue : Copy::kChange);
}

void Publisher::publish() noexcept {
  std::lock_guard lock(publish_mu_);
  if (refresh_) refresh_();
  for (Link& l : links_) {
    const std::uint64_t now = l.from->load(std::memory_order_relaxed);
    switch (l.copy) {
      case Copy::kGrowth:  // a counter never goes back: a decrease is not subtracted
        if (now > l.last) l.to->fetch_add(now - l.last, std::memory_order_relaxed);
        break;
      case Copy::kChange:  // unsigned wrap-around makes a decrease a negative delta
        if (now != l.last) l.to->fetch_add(now - l.last, std::memory_order_relaxed);
        break;
      case Copy::kValue:
        l.to->store(now, std::memory_order_relaxed);
        break;
    }
    l.last = now;
  }
  segment_->heartbeat();
}

Status Publisher::start(std::chrono::milliseconds interval) {
  if (thread_.joinable()) return {};
  interval = std::max(interval, std::chrono::milliseconds(1));
  stop_ = false;
  try {
    thread_ = std::thread([this, interval] {
      std::unique_lock lock(stop_mu_);
      while (!stop_cv_.wait_for(lock, interval, [this] { return stop_; })) {
        lock.unlock();
        publish();
        lock.lock();
      }
    });
  } catch (const std::system_error& e) {
    return tl::unexpected(Error{e.code(), "stats publisher " + segment_->path() + ": thread"});
  }
  return {};
}

void Publisher::stop() noexcept {
  if (thread_.joinable()) {
    {
      std::lock_guard lock(stop_mu_);
      stop_ = true;
    }
    stop_cv_.notify_all();
    thread_.join();
  }
  publish();  // after the component's own threads stopped, these are its exact totals
}

}  // namespace ringpipe::stats
