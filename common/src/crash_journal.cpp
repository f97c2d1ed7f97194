#include "ringpipe/common/crash_journal.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <filesystem>
#include <utility>

#include "ringpipe/common/run_dir.hpp"
#include "ringpipe/common/shared_file.hpp"

namespace ringpipe {

// The file: fixed-width words, native endianness (it never leaves the host),
// written by one process at a time. Every word is read through atomic_ref so
// a hostile or torn value is only a wrong number, checked before use.
struct CrashJournal::File {
  std::uint64_t magic;
  std::uint64_t ring_id;
  std::uint64_t running;    // pid of the process using it; 0 after close()
  std::uint64_t in_flight;  // 1 between begin() and end()
  std::uint64_t lane, seq, position;
  std::uint64_t strikes;  // deaths on the suspect
  std::uint64_t suspect_lane, suspect_seq, suspect_position;
  std::uint64_t quarantined;  // 1: the record below is skipped
  std::uint64_t q_lane, q_seq, q_position;
  std::uint64_t q_counted;  // its skip was counted
};

namespace {

constexpr std::uint64_t kMagic = 0x314c4e524a435052ull;  // "RPCJRNL1"
constexpr std::size_t kFileBytes = 4096;

std::uint64_t load(const std::uint64_t& w) noexcept {
  return std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(w)).load(std::memory_order_relaxed);
}
// Release: a later process that sees a flag sees the words stored before it.
void store(std::uint64_t& w, std::uint64_t v, std::memory_order o = std::memory_order_relaxed) noexcept {
  std::atomic_ref<std::uint64_t>(w).store(v, o);
}

}  // namespace

std::string CrashJournal::path_for(const std::string& ring_path, const std::string& reader) {
  return ring_path + "." + reader + ".crash";
}

CrashJournal::File* CrashJournal::file() const noexcept { return reinterpret_cast<File*>(mapping_.data()); }

Result<CrashJournal> CrashJournal::open(const std::string& path, std::uint64_t ring_id,
                                        std::uint32_t strikes_to_quarantine) {
  static_assert(sizeof(File) <= kFileBytes);
  const std::filesystem::path p(path);
  auto dir = RunDir::open(p.has_parent_path() ? p.parent_path().string() : ".");
  if (!dir) return tl::unexpected(Error{dir.error().code, "crash journal " + path + ": " + dir.error().context});
  auto fd = dir->create_file(p.filename().string(), O_RDWR);
  if (!fd) return tl::unexpected(Error{fd.error().code, "crash journal " + path + ": " + fd.error().context});
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return errno_error("crash journal " + path + ": fstat");
  if (st.st_size < static_cast<off_t>(kFileBytes)) {
    // Reserved, not sparse: a full tmpfs fails here, never as SIGBUS later.
    if (const int rc = ::posix_fallocate(fd->get(), 0, kFileBytes); rc != 0) {
      errno = rc;
      return errno_error("crash journal " + path + ": allocate");
    }
  }
  auto mapped = UniqueMapping::map(fd->get(), kFileBytes, true, path, "crash journal " + path);
  if (!mapped) return tl::unexpected(mapped.error());

  CrashJournal j;
  j.path_ = path;
  j.mapping_ = std::move(*mapped);
  j.threshold_ = strikes_to_quarantine;
  File& f = *j.file();
  if (load(f.magic) != kMagic || load(f.ring_id) != ring_id) {
    // New, or left by another ring: what it says is about other records.
    for (std::uint64_t* w = &f.magic; w <= &f.q_counted; ++w) store(*w, 0);
    store(f.ring_id, ring_id);
    store(f.magic, kMagic, std::memory_order_release);
  }
  j.previous_crashed_ = load(f.running) != 0;
  if (load(f.strikes) != 0) {
    j.strikes_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(load(f.strikes), UINT32_MAX));
    j.suspect_ =
        JournalRecord{static_cast<std::uint32_t>(load(f.suspect_lane)), load(f.suspect_seq), load(f.suspect_position)};
  }
  if (load(f.in_flight) != 0) {
    const JournalRecord r{static_cast<std::uint32_t>(load(f.lane)), load(f.seq), load(f.position)};
    j.died_on_ = r;
    j.strikes_ = j.suspect_ == r ? j.strikes_ + 1 : 1;
    j.suspect_ = r;
    store(f.suspect_lane, r.lane);
    store(f.suspect_seq, r.seq);
    store(f.suspect_position, r.position);
    store(f.strikes, j.strikes_);
    if (j.threshold_ != 0 && j.strikes_ >= j.threshold_) {
      store(f.quarantined, 0);
      store(f.q_lane, r.lane);
      store(f.q_seq, r.seq);
      store(f.q_position, r.position);
      store(f.q_counted, 0);
      store(f.quarantined, 1, std::memory_order_release);
    }
    store(f.in_flight, 0);
  }
  if (load(f.quarantined) != 0) {
    j.quarantined_ = JournalRecord{static_cast<std::uint32_t>(load(f.q_lane)), load(f.q_seq), load(f.q_position)};
  }
  store(f.running, static_cast<std::uint64_t>(::getpid()), std::memory_order_release);
  return j;
}

bool CrashJournal::first_skip() noexcept {
  if (mapping_.data() == nullptr || !quarantined_) return false;
  File& f = *file();
  if (load(f.q_counted) != 0) return false;
  store(f.q_counted, 1, std::memory_order_release);
  return true;
}

void CrashJournal::begin(std::uint32_t lane, std::uint64_t seq, std::uint64_t position) noexcept {
  if (mapping_.data() == nullptr) return;
  File& f = *file();
  store(f.lane, lane);
  store(f.seq, seq);
  store(f.position, position);
  store(f.in_flight, 1, std::memory_order_release);
}

void CrashJournal::end() noexcept {
  if (mapping_.data() == nullptr) return;
  File& f = *file();
  if (load(f.in_flight) == 0) return;
  store(f.in_flight, 0, std::memory_order_release);
  // The suspect was read to its end this time: it is not what kills us.
  if (strikes_ != 0 && suspect_ &&
      *suspect_ == JournalRecord{static_cast<std::uint32_t>(load(f.lane)), load(f.seq), load(f.position)}) {
    strikes_ = 0;
    suspect_.reset();
    store(f.strikes, 0);
  }
}

void CrashJournal::close() noexcept {
  if (mapping_.data() == nullptr) return;
  end();
  store(file()->running, 0, std::memory_order_release);
}

}  // namespace ringpipe
