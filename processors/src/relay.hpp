#pragma once
// Relay: the pass-through processor (`type: relay`, ProcessorOptions::relay).
// One thread per input ring maps every sample (rule, names, labels, family:
// the same SeriesMapper as aggregation) and writes it at once, unaggregated,
// with its own timestamp (the batch's received_ns when it has none), into
// its own lane of the output ring as a kEntryTimestamp entry
// (metric/FORMAT.md), in input order. Only samples that stand alone are
// relayed: gauges and Prometheus samples; a StatsD counter increment, gauge
// delta, observation or set member means nothing without aggregation and is
// dropped and counted (not_relayable). At-least-once: an input record's
// cursor passes it only after its entries are published, so a kill -9 may
// relay again what one poll took (kRelayPollRecords records), never lose it.
// Created by create(); start()/stop() from one controlling thread; stats()
// from any thread.

#include <memory>

#include "ringpipe/common/result.hpp"
#include "ringpipe/processors/aggregator.hpp"
#include "ringpipe/processors/processor.hpp"

namespace ringpipe::processors::detail {

// Input records one poll takes at most: the most a kill -9 can relay twice.
inline constexpr std::size_t kRelayPollRecords = 64;

class Relay {
 public:
  // Opens the rings, attaches one reader per input and one producer lane per
  // input on the output; errors read "processor: <ring path>: cause".
  [[nodiscard]] static Result<std::unique_ptr<Relay>> create(const ProcessorOptions& options);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  [[nodiscard]] Status start();
  // The readers stop after the record in hand; idempotent.
  void stop() noexcept;
  [[nodiscard]] EngineStats stats() const;

 private:
  struct Impl;
  explicit Relay(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringpipe::processors::detail
