#pragma once
// Socket helpers shared by listen_sockets.cpp (binding) and ingest_server.cpp
// (adopting what was bound): the stale socket file, the umask while a Unix
// socket is bound, the receive buffer, and the key a socket is handed over by.

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>

#include <spdlog/spdlog.h>

#include "ringpipe/common/result.hpp"

namespace ringpipe::ingest {

// SO_RCVBUFFORCE (needs CAP_NET_ADMIN) beats net.core.rmem_max; SO_RCVBUF otherwise.
inline void set_receive_buffer(int fd, std::uint32_t bytes, const std::string& what) {
  if (bytes == 0) return;
  const int want = static_cast<int>(std::min<std::uint32_t>(bytes, INT32_MAX / 2));
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0) {
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
  }
  int got = 0;
  socklen_t len = sizeof got;
  (void)::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len);
  if (got / 2 < want) {  // the kernel reports double what it counts against
    spdlog::warn("{}: receive buffer {} bytes, asked for {} (raise net.core.rmem_max or run with CAP_NET_ADMIN)", what,
                 got / 2, want);
  }
}

// A socket path may hold a socket file left by a previous run; anything else
// there is not ours to delete (a typo in the config must not remove a file).
inline Status remove_stale_socket(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return errno_error(what + ": stat");
  }
  if (!S_ISSOCK(st.st_mode))
    return make_error(std::errc::file_exists, what + ": exists and is not a socket; not removing it");
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_error(what + ": remove stale socket");
  return {};
}

// bind() creates the socket file with 0777 & ~umask; chmod() after it would
// leave a window with the process's default permissions. While one of these
// lives the file is born with at most owner read/write and no more than the
// configured mode, and chmod() then widens it to exactly that mode. The umask
// is process-wide, but it only ever narrows what other threads create meanwhile.
class RestrictiveUmask {
 public:
  explicit RestrictiveUmask(std::uint32_t mode) noexcept : old_(::umask(static_cast<mode_t>(0177 | (0777 & ~mode)))) {}
  ~RestrictiveUmask() { ::umask(old_); }
  RestrictiveUmask(const RestrictiveUmask&) = delete;
  RestrictiveUmask& operator=(const RestrictiveUmask&) = delete;

 private:
  mode_t old_;
};

// The port an IP socket is bound to (0 for other sockets).
inline std::uint16_t bound_port(int fd) noexcept {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

// The key of a listener within a source: "statsd/udp0", "statsd#1/tcp".
inline std::string listen_key(const std::string& config_name, const char* transport, std::uint32_t index) {
  return config_name + "/" + transport + std::to_string(index);
}
inline std::string listen_key(const std::string& config_name, const char* transport) {
  return config_name + "/" + transport;
}

}  // namespace ringpipe::ingest
