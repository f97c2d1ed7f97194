#include "ringpipe/common/shared_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <utility>

namespace ringpipe {

Result<NewSharedFile> NewSharedFile::create(const std::string& path, std::uint64_t bytes, const std::string& what) {
  const std::filesystem::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) {
    std::filesystem::create_directories(p.parent_path(), ec);
    if (ec) return tl::unexpected(Error{ec, what + ": create directory " + p.parent_path().string()});
  }
  static std::atomic<unsigned> counter{0};
  NewSharedFile f;
  f.path_ = path;
  f.what_ = what;
  f.tmp_ = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
  f.fd_.reset(::open(f.tmp_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!f.fd_.valid()) {
    f.published_ = true;  // nothing of ours to remove
    return errno_error(what + ": open " + f.tmp_);
  }
  if (int rc = ::posix_fallocate(f.fd_.get(), 0, static_cast<off_t>(bytes)); rc != 0) {
    errno = rc;
    return errno_error(what + ": reserve " + std::to_string(bytes) + " bytes");
  }
  return f;
}

NewSharedFile::NewSharedFile(NewSharedFile&& o) noexcept
    : path_(std::move(o.path_)),
      tmp_(std::move(o.tmp_)),
      what_(std::move(o.what_)),
      fd_(std::move(o.fd_)),
      published_(std::exchange(o.published_, true)) {}

NewSharedFile& NewSharedFile::operator=(NewSharedFile&& o) noexcept {
  if (this != &o) {
    if (!published_) ::unlink(tmp_.c_str());
    path_ = std::move(o.path_);
    tmp_ = std::move(o.tmp_);
    what_ = std::move(o.what_);
    fd_ = std::move(o.fd_);
    published_ = std::exchange(o.published_, true);
  }
  return *this;
}

NewSharedFile::~NewSharedFile() {
  if (!published_) ::unlink(tmp_.c_str());
}

Status NewSharedFile::publish(bool replace) {
  if (replace) {
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) return errno_error(what_ + ": rename into place");
  } else {
    if (::link(tmp_.c_str(), path_.c_str()) != 0) return errno_error(what_ + ": link into place");
    ::unlink(tmp_.c_str());
  }
  published_ = true;
  return {};
}

Result<std::byte*> map_shared(int fd, std::size_t bytes, bool writable, const std::string& what) {
  void* p = ::mmap(nullptr, bytes, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return errno_error(what + ": mmap " + std::to_string(bytes) + " bytes");
  return static_cast<std::byte*>(p);
}

}  // namespace ringpipe
