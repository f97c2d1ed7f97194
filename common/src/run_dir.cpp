#include "ringpipe/common/run_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <utility>
#include <vector>

namespace ringpipe {
namespace {

constexpr int kMaxSymlinks = 40;  // as the kernel's own path walk

std::string octal_mode(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

std::string describe(const struct stat& st) {
  return "owned by uid " + std::to_string(st.st_uid) + " with mode " + octal_mode(st.st_mode);
}

tl::unexpected<Error> refuse(const std::string& context) { return make_error(std::errc::permission_denied, context); }

bool writable_by_others(const struct stat& st) { return (st.st_mode & (S_IWGRP | S_IWOTH)) != 0; }

// The directory that will hold our files: ours alone.
Status check_own_dir(const struct stat& st, const std::string& shown) {
  const uid_t me = ::geteuid();
  if (st.st_uid != me || writable_by_others(st)) {
    return refuse("run directory " + shown + ": " + describe(st) + ", expected owner uid " + std::to_string(me) +
                  " and no write access for group or others");
  }
  return {};
}

// A directory above it: nobody but root or us can rename or replace what is in it.
Status check_ancestor(const struct stat& st, const std::string& shown) {
  const uid_t me = ::geteuid();
  if ((st.st_uid != me && st.st_uid != 0) || (writable_by_others(st) && (st.st_mode & S_ISVTX) == 0)) {
    const std::string owners = me == 0 ? "uid 0" : "uid 0 or " + std::to_string(me);
    return refuse("run directory: " + shown + ": " + describe(st) + ", expected owner " + owners +
                  " and no write access for group or others unless sticky");
  }
  return {};
}

std::vector<std::string> split(std::string_view p) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < p.size()) {
    const std::size_t j = p.find('/', i);
    const std::size_t end = j == std::string_view::npos ? p.size() : j;
    if (end > i) out.emplace_back(p.substr(i, end - i));
    i = end + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& parts) {
  std::string s;
  for (const std::string& p : parts) s += "/" + p;
  return s.empty() ? "/" : s;
}

bool one_component(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

// A file in a run directory: a regular file of ours.
Status check_file(int fd, const std::string& shown) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_error(shown + ": fstat");
  if (!S_ISREG(st.st_mode)) return refuse(shown + ": not a regular file");
  if (st.st_uid != ::geteuid()) {
    return refuse(shown + ": " + describe(st) + ", expected owner uid " + std::to_string(::geteuid()));
  }
  return {};
}

}  // namespace

Result<RunDir> RunDir::open_or_create(const std::string& path) { return walk(path, true); }
Result<RunDir> RunDir::open(const std::string& path) { return walk(path, false); }

Result<RunDir> RunDir::walk(const std::string& path, bool create) {
  if (path.empty()) return invalid("run directory: empty path");
  std::string absolute = path;
  if (path.front() != '/') {
    char cwd[PATH_MAX];
    if (::getcwd(cwd, sizeof cwd) == nullptr) return errno_error("run directory " + path + ": getcwd");
    absolute = std::string(cwd) + "/" + path;
  }
  // Components still to walk, the next one last.
  std::vector<std::string> todo = split(absolute);
  std::reverse(todo.begin(), todo.end());
  // The verified directories from / down to where we are; [0] is /.
  std::vector<std::string> names;
  std::vector<UniqueFd> dirs;
  auto restart_at_root = [&]() -> Status {
    names.clear();
    dirs.clear();
    UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root.valid()) return errno_error("run directory " + path + ": open /");
    struct stat st {};
    if (::fstat(root.get(), &st) != 0) return errno_error("run directory " + path + ": fstat /");
    if (Status ok = check_ancestor(st, "/"); !ok) return ok;
    dirs.push_back(std::move(root));
    return {};
  };
  if (Status ok = restart_at_root(); !ok) return tl::unexpected(ok.error());
  if (todo.empty()) return refuse("run directory /: refusing the root directory");

  int symlinks = 0;
  int retries = 0;
  while (!todo.empty()) {
    const std::string name = std::move(todo.back());
    todo.pop_back();
    if (name == ".") continue;
    if (name == "..") {
      if (dirs.size() > 1) {
        dirs.pop_back();
        names.pop_back();
      }
      continue;
    }
    const bool last = todo.empty();
    names.push_back(name);
    const std::string shown = join(names);
    const int parent = dirs.back().get();

    UniqueFd fd(::openat(parent, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
      const int err = errno;
      struct stat lst {};
      if (err == ENOENT && create) {
        if (::mkdirat(parent, name.c_str(), 0700) != 0) {
          if (errno == EEXIST && ++retries < 8) {  // made meanwhile: look at it again
            names.pop_back();
            todo.push_back(name);
            continue;
          }
          return errno_error("run directory " + shown + ": mkdir");
        }
        // O_RDONLY rather than O_PATH: fchmod needs a real descriptor. The
        // umask may have taken bits away; 0700 is what we want, exactly.
        fd.reset(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd.valid()) return errno_error("run directory " + shown + ": open");
        if (::fchmod(fd.get(), 0700) != 0) return errno_error("run directory " + shown + ": chmod 0700");
      } else if ((err == ENOTDIR || err == ELOOP) && ::fstatat(parent, name.c_str(), &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
                 S_ISLNK(lst.st_mode)) {
        if (last) {
          return make_error(std::errc::too_many_symbolic_link_levels,
                            "run directory " + shown + ": is a symlink (" + describe(lst) + "), refused");
        }
        if (lst.st_uid != 0 && lst.st_uid != ::geteuid()) {
          return make_error(std::errc::too_many_symbolic_link_levels,
                            "run directory: " + shown + ": is a symlink " + describe(lst) +
                                ", refused (only root's or our own symlinks are followed)");
        }
        if (++symlinks > kMaxSymlinks) {
          return make_error(std::errc::too_many_symbolic_link_levels, "run directory " + path + ": too many symlinks");
        }
        std::string target(PATH_MAX, '\0');
        const ssize_t n = ::readlinkat(parent, name.c_str(), target.data(), target.size());
        if (n < 0) return errno_error("run directory " + shown + ": readlink");
        target.resize(static_cast<std::size_t>(n));
        names.pop_back();
        std::vector<std::string> parts = split(target);
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.push_back(*it);
        if (!target.empty() && target.front() == '/') {
          if (Status ok = restart_at_root(); !ok) return tl::unexpected(ok.error());
        }
        continue;
      } else {
        errno = err;
        return errno_error("run directory " + shown);
      }
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return errno_error("run directory " + shown + ": fstat");
    if (Status ok = last ? check_own_dir(st, shown) : check_ancestor(st, shown); !ok) return tl::unexpected(ok.error());
    dirs.push_back(std::move(fd));
  }

  RunDir d;
  d.path_ = join(names);
  // Reopened for reading: an O_PATH descriptor cannot be fchmod'ed or listed.
  d.fd_.reset(::openat(dirs.back().get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d.fd_.valid()) return errno_error("run directory " + d.path_ + ": open");
  return d;
}

std::string RunDir::file_path(std::string_view name) const {
  return path_ == "/" ? "/" + std::string(name) : path_ + "/" + std::string(name);
}

Result<UniqueFd> RunDir::open_file(std::string_view name, int flags) const {
  const std::string shown = file_path(name);
  if (!one_component(name)) return invalid(shown + ": not a plain file name");
  UniqueFd fd(::openat(fd_.get(), std::string(name).c_str(), flags | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ELOOP) return make_error(std::errc::too_many_symbolic_link_levels, shown + ": is a symlink, refused");
    return errno_error(shown);
  }
  if (Status ok = check_file(fd.get(), shown); !ok) return tl::unexpected(ok.error());
  return fd;
}

Result<UniqueFd> RunDir::create_file(std::string_view name, int flags) const {
  const std::string shown = file_path(name);
  if (!one_component(name)) return invalid(shown + ": not a plain file name");
  UniqueFd fd(::openat(fd_.get(), std::string(name).c_str(), flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    if (errno == ELOOP) return make_error(std::errc::too_many_symbolic_link_levels, shown + ": is a symlink, refused");
    return errno_error(shown);
  }
  if (Status ok = check_file(fd.get(), shown); !ok) return tl::unexpected(ok.error());
  // The umask only takes bits away, but a file left by an older version may be wider.
  if (::fchmod(fd.get(), 0600) != 0) return errno_error(shown + ": chmod 0600");
  return fd;
}

Status RunDir::rename(std::string_view from, std::string_view to) const {
  if (!one_component(from) || !one_component(to)) return invalid(file_path(to) + ": not a plain file name");
  if (::renameat(fd_.get(), std::string(from).c_str(), fd_.get(), std::string(to).c_str()) != 0) {
    return errno_error(file_path(to) + ": rename " + std::string(from));
  }
  return {};
}

Status RunDir::link(std::string_view from, std::string_view to) const {
  if (!one_component(from) || !one_component(to)) return invalid(file_path(to) + ": not a plain file name");
  if (::linkat(fd_.get(), std::string(from).c_str(), fd_.get(), std::string(to).c_str(), 0) != 0) {
    return errno_error(file_path(to) + ": link " + std::string(from));
  }
  return {};
}

Status RunDir::remove(std::string_view name) const {
  if (!one_component(name)) return invalid(file_path(name) + ": not a plain file name");
  if (::unlinkat(fd_.get(), std::string(name).c_str(), 0) != 0 && errno != ENOENT) {
    return errno_error(file_path(name) + ": unlink");
  }
  return {};
}

}  // namespace ringpipe
