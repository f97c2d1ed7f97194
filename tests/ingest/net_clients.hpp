#pragma once
// Test helper: minimal blocking loopback clients (raw sockets) for sending
// traffic to an ingest server. Every call is bounded (send timeouts).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "loopback.hpp"
#include "ringpipe/common/unique_fd.hpp"

namespace ringpipe::ingest::testing {

inline void set_send_timeout(int fd) {
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

using ringpipe::testing::loopback_address;

inline UniqueFd udp_socket() {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM, 0));
  set_send_timeout(fd.get());
  return fd;
}

inline bool send_udp(int fd, std::uint16_t port, std::string_view payload) {
  const sockaddr_in a = loopback_address(port);
  return ::sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<const sockaddr*>(&a), sizeof a) ==
         static_cast<ssize_t>(payload.size());
}

inline UniqueFd tcp_connect(std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  set_send_timeout(fd.get());
  const sockaddr_in a = loopback_address(port);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
  return fd;
}

inline sockaddr_un unix_address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  return a;
}

inline UniqueFd unix_connect(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  set_send_timeout(fd.get());
  const sockaddr_un a = unix_address(path);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
  return fd;
}

inline UniqueFd unixgram_socket() {
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM, 0));
  set_send_timeout(fd.get());
  return fd;
}

inline bool send_unixgram(int fd, const std::string& path, std::string_view payload) {
  const sockaddr_un a = unix_address(path);
  return ::sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<const sockaddr*>(&a), sizeof a) ==
         static_cast<ssize_t>(payload.size());
}

inline bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace ringpipe::ingest::testing
