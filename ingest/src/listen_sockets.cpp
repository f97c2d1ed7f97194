#include "ringpipe/ingest/listen_sockets.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <spdlog/spdlog.h>

#include "listen_util.hpp"

namespace ringpipe::ingest {
namespace {

// "ingest statsd: udp 0.0.0.0:9125: bind: Address already in use".
tl::unexpected<Error> failed(const std::string& what, const char* step) {
  return tl::unexpected(Error{std::error_code(errno, std::system_category()), what + ": " + step});
}

struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_INET;
};

Result<Address> inet_address(const std::string& host, std::uint16_t port, const std::string& what) {
  Address a;
  in6_addr v6{};
  in_addr v4{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    auto* s = reinterpret_cast<sockaddr_in6*>(&a.storage);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    s->sin6_addr = v6;
    a.length = sizeof(sockaddr_in6);
    a.family = AF_INET6;
  } else if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    auto* s = reinterpret_cast<sockaddr_in*>(&a.storage);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    s->sin_addr = v4;
    a.length = sizeof(sockaddr_in);
  } else {
    return invalid(what + ": bad address");
  }
  return a;
}

std::string inet_text(const std::string& host, std::uint16_t port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// One IP socket of `type`, bound to host:port; a wildcard "::" also takes IPv4.
Result<UniqueFd> bind_inet(int type, const std::string& host, std::uint16_t port, bool reuse_port,
                           const std::string& what) {
  auto address = inet_address(host, port, what);
  if (!address) return tl::unexpected(address.error());
  UniqueFd fd(::socket(address->family, type | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return failed(what, "socket");
  const int one = 1;
  const int zero = 0;
  if (address->family == AF_INET6 && host == "::")
    (void)::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (type == SOCK_STREAM) (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address->storage), address->length) != 0)
    return failed(what, "bind");
  if (type == SOCK_STREAM && ::listen(fd.get(), SOMAXCONN) != 0) return failed(what, "listen");
  return fd;
}

// A Unix socket at `path`, born with at most `mode`.
Result<UniqueFd> bind_unix(int type, const std::string& path, std::uint32_t mode, const std::string& what) {
  sockaddr_un sun{};
  if (path.size() >= sizeof sun.sun_path)
    return invalid(what + ": path longer than " + std::to_string(sizeof sun.sun_path - 1) + " bytes");
  if (auto r = remove_stale_socket(path, what); !r) return tl::unexpected(r.error());
  UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return failed(what, "socket");
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.data(), path.size());
  {
    const RestrictiveUmask umask(mode);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sun), sizeof sun) != 0) return failed(what, "bind");
  }
  if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) return failed(what, "chmod");
  if (type == SOCK_STREAM && ::listen(fd.get(), SOMAXCONN) != 0) return failed(what, "listen");
  return fd;
}

}  // namespace

Result<std::vector<ListenSocket>> bind_listen_sockets(const IngestConfig& config) {
  std::vector<ListenSocket> out;
  const std::string who = "ingest " + config.name + ": ";
  if (config.udp) {
    const UdpConfig& u = *config.udp;
    const std::string what = "udp " + inet_text(u.address, u.port);
    if (u.sockets == 0 || u.sockets > kMaxUdpSockets)
      return invalid(who + what + ": sockets must be 1.." + std::to_string(kMaxUdpSockets));
    std::uint16_t port = u.port;
    for (std::uint32_t i = 0; i < u.sockets; ++i) {
      auto fd = bind_inet(SOCK_DGRAM, u.address, port, u.sockets > 1, who + what);
      if (!fd) return tl::unexpected(fd.error());
      const int one = 1;
      (void)::setsockopt(fd->get(), SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
      set_receive_buffer(fd->get(), u.receive_buffer_bytes, who + what);
      port = bound_port(fd->get());  // later sockets join the first one's port
      out.push_back(ListenSocket{listen_key(config.name, "udp", i), what, std::move(*fd)});
    }
  }
  if (config.tcp) {
    const TcpConfig& t = *config.tcp;
    const std::string what = "tcp " + inet_text(t.address, t.port);
    auto fd = bind_inet(SOCK_STREAM, t.address, t.port, false, who + what);
    if (!fd) return tl::unexpected(fd.error());
    out.push_back(ListenSocket{listen_key(config.name, "tcp"), what, std::move(*fd)});
  }
  if (config.unix_datagram) {
    const UnixDatagramConfig& u = *config.unix_datagram;
    const std::string what = "unixgram " + u.path;
    auto fd = bind_unix(SOCK_DGRAM, u.path, u.mode, who + what);
    if (!fd) return tl::unexpected(fd.error());
    const int one = 1;
    (void)::setsockopt(fd->get(), SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
    set_receive_buffer(fd->get(), u.receive_buffer_bytes, who + what);
    out.push_back(ListenSocket{listen_key(config.name, "unixgram"), what, std::move(*fd)});
  }
  if (config.unix_stream) {
    const UnixStreamConfig& u = *config.unix_stream;
    const std::string what = "unix " + u.path;
    auto fd = bind_unix(SOCK_STREAM, u.path, u.mode, who + what);
    if (!fd) return tl::unexpected(fd.error());
    out.push_back(ListenSocket{listen_key(config.name, "unix"), what, std::move(*fd)});
  }
  return out;
}

bool parse_listen_fd(std::string_view text, std::map<std::string, int>& into) {
  const auto eq = text.rfind('=');
  if (eq == std::string_view::npos || eq == 0) return false;
  int fd = -1;
  const std::string_view number = text.substr(eq + 1);
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), fd);
  if (ec != std::errc() || end != number.data() + number.size() || fd < 3) return false;
  into[std::string(text.substr(0, eq))] = fd;
  return true;
}

}  // namespace ringpipe::ingest
