#pragma once
// RunDir: an open, verified directory that holds a pipeline's files (rings,
// stats segments, the supervisor's status file, processor state). Every file
// of a run directory is created and opened relative to its descriptor, so no
// path is looked up twice and no symlink planted in it is followed.
//
// What "verified" means (the run directory sits in world-writable /dev/shm):
//   - the directory itself is owned by the running user (euid), is not
//     writable by group or others and is not a symlink;
//   - every directory above it is owned by root or by us and is not writable
//     by group or others unless it is sticky (like /dev/shm and /tmp); a
//     symlink above it is followed only when root or we own it;
//   - missing directories are made mode 0700 whatever the umask, with
//     mkdirat relative to the verified parent;
//   - files are opened with O_NOFOLLOW | O_CLOEXEC, created mode 0600, and
//     refused unless they are regular files owned by us.
// Errors read "run directory PATH: owned by uid U with mode 0777: ...".
// Move-only; the methods are const and may be called from any thread.

#include <string>
#include <string_view>

#include "ringpipe/common/result.hpp"
#include "ringpipe/common/unique_fd.hpp"

namespace ringpipe {

class RunDir {
 public:
  // Opens `path`, making it and any missing parent 0700. Fails, and creates
  // nothing below it, on a directory that does not pass the checks above.
  [[nodiscard]] static Result<RunDir> open_or_create(const std::string& path);
  // Opens an existing `path` under the same checks; creates nothing.
  [[nodiscard]] static Result<RunDir> open(const std::string& path);

  // An existing file (`name` is one path component): O_NOFOLLOW | O_CLOEXEC
  // are added to `flags`; refused unless a regular file owned by us.
  [[nodiscard]] Result<UniqueFd> open_file(std::string_view name, int flags) const;
  // Opens or creates a file mode 0600 (O_CREAT | O_NOFOLLOW | O_CLOEXEC are
  // added; pass O_EXCL to insist on a new file). An existing file must be a
  // regular file owned by us; its mode is set to 0600.
  [[nodiscard]] Result<UniqueFd> create_file(std::string_view name, int flags) const;
  // renameat / linkat within this directory (link fails with EEXIST on a taken name).
  [[nodiscard]] Status rename(std::string_view from, std::string_view to) const;
  [[nodiscard]] Status link(std::string_view from, std::string_view to) const;
  // unlinkat; a missing file is not an error.
  [[nodiscard]] Status remove(std::string_view name) const;

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  // The directory as it was reached (symlinks above it resolved).
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  // path() + "/" + name, for messages.
  [[nodiscard]] std::string file_path(std::string_view name) const;

 private:
  RunDir() = default;
  static Result<RunDir> walk(const std::string& path, bool create);
  std::string path_;
  UniqueFd fd_;
};

}  // namespace ringpipe
