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
  auto dir = RunDir::open_or_create(p.has_parent_path() ? p.parent_path().string() : ".");
  if (!dir) return tl::unexpected(Error{dir.error().code, what + ": " + dir.error().context});
  static std::atomic<unsigned> counter{0};
  NewSharedFile f;
  f.name_ = p.filename().string();
  f.what_ = what;
  f.tmp_ = f.name_ + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
  auto fd = dir->create_file(f.tmp_, O_RDWR | O_EXCL);
  if (!fd) {
    f.published_ = true;  // nothing of ours to remove
    return tl::unexpected(Error{fd.error().code, what + ": " + fd.error().context});
  }
  f.fd_ = std::move(*fd);
  f.dir_ = std::move(*dir);
  if (int rc = ::posix_fallocate(f.fd_.get(), 0, static_cast<off_t>(bytes)); rc != 0) {
    errno = rc;
    return errno_error(what + ": reserve " + std::to_string(bytes) + " bytes");
  }
  return f;
}

NewSharedFile::NewSharedFile(NewSharedFile&& o) noexcept
    : dir_(std::move(o.dir_)),
      name_(std::move(o.name_)),
      tmp_(std::move(o.tmp_)),
      what_(std::move(o.what_)),
      fd_(std::move(o.fd_)),
      published_(std::exchange(o.published_, true)) {}

NewSharedFile& NewSharedFile::operator=(NewSharedFile&& o) noexcept {
  if (this != &o) {
    discard();
    dir_ = std::move(o.dir_);
    name_ = std::move(o.name_);
    tmp_ = std::move(o.tmp_);
    what_ = std::move(o.what_);
    fd_ = std::move(o.fd_);
    published_ = std::exchange(o.published_, true);
  }
  return *this;
}

NewSharedFile::~NewSharedFile() { discard(); }

void NewSharedFile::discard() noexcept {
  if (!published_ && dir_) (void)dir_->remove(tmp_);
}

Status NewSharedFile::publish(bool replace) {
  if (!dir_) return invalid(what_ + ": publish: moved from");
  if (replace) {
    if (Status ok = dir_->rename(tmp_, name_); !ok)
      return tl::unexpected(Error{ok.error().code, what_ + ": " + ok.error().context});
  } else {
    if (Status ok = dir_->link(tmp_, name_); !ok)
      return tl::unexpected(Error{ok.error().code, what_ + ": " + ok.error().context});
    (void)dir_->remove(tmp_);
  }
  published_ = true;
  return {};
}

}  // namespace ringpipe
