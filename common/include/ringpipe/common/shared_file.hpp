#pragma once
// NewSharedFile: a file being built for shared mapping (rings, stats
// segments). create() opens the parent directory through RunDir (made 0700
// when missing, refused when another user could control it), opens a
// temporary name beside the real one exclusively with mode 0600 (relative to
// that directory, never through a symlink) and reserves every byte, so
// a full tmpfs fails here and never later as SIGBUS. The caller fills it
// through a mapping of fd() (UniqueMapping, common/mapping.hpp); publish() then gives it its real name — linking,
// which refuses an existing file, or renaming over one — so no reader ever
// opens a half-made file under that name. Destroyed unpublished, it removes
// the temporary file. Move-only; one thread at a time.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "ringpipe/common/result.hpp"
#include "ringpipe/common/run_dir.hpp"
#include "ringpipe/common/unique_fd.hpp"

namespace ringpipe {

class NewSharedFile {
 public:
  // `what` starts every error message ("create ring /dev/shm/…").
  [[nodiscard]] static Result<NewSharedFile> create(const std::string& path, std::uint64_t bytes,
                                                    const std::string& what);

  NewSharedFile(NewSharedFile&& other) noexcept;
  NewSharedFile& operator=(NewSharedFile&& other) noexcept;
  NewSharedFile(const NewSharedFile&) = delete;
  NewSharedFile& operator=(const NewSharedFile&) = delete;
  ~NewSharedFile();

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  // Fails with EEXIST when the name is taken and `replace` is false.
  [[nodiscard]] Status publish(bool replace);
  // The descriptor, kept open after publishing (for locks, fstat).
  [[nodiscard]] UniqueFd release_fd() noexcept { return std::move(fd_); }

 private:
  NewSharedFile() = default;
  void discard() noexcept;
  std::optional<RunDir> dir_;
  std::string name_;
  std::string tmp_;
  std::string what_;
  UniqueFd fd_;
  bool published_ = false;
};

}  // namespace ringpipe
