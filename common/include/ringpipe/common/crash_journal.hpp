#pragma once
// CrashJournal: what one named ring reader of one component was reading when
// its process died, so a record that kills its reader every time is found,
// skipped and counted instead of crashing the pipeline forever
// (docs/guarantees.md, "A record that kills its reader").
//
// Owns a small file beside the ring, `<ring>.<reader>.crash` (created 0600
// through RunDir: O_NOFOLLOW, ours only), mapped MAP_SHARED: the stores a
// process made before it died are in the page cache for the next one, without
// a syscall per record. (A machine crash may lose them; the ring's own tmpfs
// file is lost then too.)
//
// open() reads what the previous process left and moves on:
//   - it did not close() cleanly: previous_crashed(); the reader should read
//     carefully (one record at a time, finishing each) so the next death
//     pins the exact record;
//   - it died between begin() and end(): that record takes a strike; strikes
//     on the same record add up (another record restarts the count; end() of
//     the record resets it), and at `strikes_to_quarantine` the record is
//     quarantined: is_quarantined() is true for it from then on.
// A journal left by another ring (creation id) is reset.
//
// One process at a time per file: the caller holds the reader's name (the
// ring's OFD lock on the reader slot). One thread calls begin/end. Never
// throws; begin/end/is_quarantined are plain loads and stores.

#include <cstdint>
#include <optional>
#include <string>

#include "ringpipe/common/mapping.hpp"
#include "ringpipe/common/result.hpp"

namespace ringpipe {

// One record of a ring: lane, per-lane seq and byte position identify it.
struct JournalRecord {
  std::uint32_t lane = 0;
  std::uint64_t seq = 0;
  std::uint64_t position = 0;
  friend bool operator==(const JournalRecord&, const JournalRecord&) = default;
};

class CrashJournal {
 public:
  // The journal's file for reader `reader` of the ring at `ring_path`.
  [[nodiscard]] static std::string path_for(const std::string& ring_path, const std::string& reader);
  // Opens or creates the file; `ring_id` is the ring's creation id.
  // strikes_to_quarantine 0: count strikes but never quarantine.
  [[nodiscard]] static Result<CrashJournal> open(const std::string& path, std::uint64_t ring_id,
                                                 std::uint32_t strikes_to_quarantine);

  CrashJournal(CrashJournal&& other) noexcept = default;
  CrashJournal& operator=(CrashJournal&& other) noexcept = default;
  CrashJournal(const CrashJournal&) = delete;
  CrashJournal& operator=(const CrashJournal&) = delete;
  ~CrashJournal() = default;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  // The previous process of this reader died without close().
  [[nodiscard]] bool previous_crashed() const noexcept { return previous_crashed_; }
  // The record the previous process had begun and not ended when it died.
  [[nodiscard]] const std::optional<JournalRecord>& died_on() const noexcept { return died_on_; }
  // Deaths in a row with died_on() in flight (0 when none).
  [[nodiscard]] std::uint32_t strikes() const noexcept { return strikes_; }
  [[nodiscard]] std::uint32_t strikes_to_quarantine() const noexcept { return threshold_; }
  // The record to skip, if any.
  [[nodiscard]] const std::optional<JournalRecord>& quarantined() const noexcept { return quarantined_; }

  [[nodiscard]] bool is_quarantined(std::uint32_t lane, std::uint64_t seq, std::uint64_t position) const noexcept {
    return quarantined_ && quarantined_->seq == seq && quarantined_->lane == lane && quarantined_->position == position;
  }
  // True the first time it is called for the current quarantined record, in
  // any process: the caller counts and logs the skip then (exactly once).
  [[nodiscard]] bool first_skip() noexcept;

  // The record about to be handed to processing, and the end of it.
  void begin(std::uint32_t lane, std::uint64_t seq, std::uint64_t position) noexcept;
  void end() noexcept;
  // A clean stop: the next open() finds no crash.
  void close() noexcept;

 private:
  CrashJournal() = default;
  struct File;
  [[nodiscard]] File* file() const noexcept;
  std::string path_;
  UniqueMapping mapping_;
  std::uint32_t threshold_ = 0;
  bool previous_crashed_ = false;
  std::optional<JournalRecord> died_on_;
  std::uint32_t strikes_ = 0;
  std::optional<JournalRecord> suspect_;  // strikes_ > 0: the record they are on
  std::optional<JournalRecord> quarantined_;
};

}  // namespace ringpipe
