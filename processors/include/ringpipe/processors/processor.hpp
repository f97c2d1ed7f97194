#pragma once
// Processor: the threaded aggregation component. One reader thread per input
// ring maps samples (rule, names, labels, family) and hands them in batches
// to N shard threads through lock-free queues; a series always goes to the
// shard its hash picks, and each shard owns its state (no locks on the hot
// path). Every flush_interval each shard writes its changes into the output
// ring through its own producer lane. Created by create(), driven by start()
// and stop() from one controlling thread; stats() and request_snapshot() are
// safe from any thread.
//
// Resync: an exporter that (re)starts creates the file `<output>.resync`; at
// its next flush the processor removes it and every shard writes a full
// snapshot (see metric/FORMAT.md). Snapshots also come every
// snapshot_every_flushes flushes and at start.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ringpipe/common/result.hpp"
#include "ringpipe/processors/aggregator.hpp"

namespace ringpipe::processors {

struct ProcessorOptions {
  // Pass-through instead of aggregation (`type: relay`, src/relay.hpp): every
  // gauge and Prometheus sample goes to `output` at once with its own
  // timestamp, unaggregated. Only inputs, output, reader_name, output_timeout,
  // quarantine_after_crashes and the engine's mapping, family and name limits
  // apply; state_dir must be empty.
  bool relay = false;
  EngineOptions engine;                   // engine.shards = number of shard threads
  std::vector<std::string> inputs;        // sample rings; one reader thread each
  std::string reader_name = "processor";  // durable reader name on every input
  std::string output;                     // metric ring; needs >= engine.shards lanes
  std::chrono::milliseconds flush_interval{1000};
  std::chrono::milliseconds output_timeout{200};  // longest wait for output space per record
  std::size_t batch_samples = 2048;               // samples per hand-off to a shard
  std::size_t max_batches_in_flight = 256;        // per reader; bounds queue memory (backpressure beyond)
  // Crash-safe state (processors/STATE.md): when set, each shard keeps its
  // series in `<state_dir>/shard-<i>.state` and a second durable reader
  // `<reader_name>.c` holds the input back until the shards committed it.
  std::string state_dir;
  std::uint64_t state_undo_bytes = 16u << 20;  // per shard
  // A record that was being read when the processor died this many times in
  // a row is skipped and counted (quarantined_records); 0: never skip. The
  // journal is `<input>.<reader_name>.crash` (common/crash_journal.hpp).
  std::uint32_t quarantine_after_crashes = 3;
};

class Processor {
 public:
  // Opens the rings and attaches readers and producers; errors read
  // "processor: <ring path>: cause".
  [[nodiscard]] static Result<std::unique_ptr<Processor>> create(ProcessorOptions options);
  ~Processor();
  Processor(const Processor&) = delete;
  Processor& operator=(const Processor&) = delete;

  // Starts the reader and shard threads.
  [[nodiscard]] Status start();
  // Readers stop taking records, shards apply what is queued, flush once
  // more, and every thread is joined. Idempotent.
  void stop() noexcept;

  void request_snapshot() noexcept;
  // Counters summed over threads, as of their last publication (each flush).
  [[nodiscard]] EngineStats stats() const;

 private:
  struct Impl;
  explicit Processor(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringpipe::processors
