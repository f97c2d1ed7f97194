#include "mosquitto_broker.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <utility>

#include "test_support.hpp"

namespace ringpipe::testing {
namespace {

bool port_open(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

bool MosquittoBroker::available() { return ::access(kBinary, X_OK) == 0; }

std::uint16_t MosquittoBroker::free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  std::uint16_t port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  if (fd >= 0) ::close(fd);
  return port;
}

std::string MosquittoBroker::anonymous_listener(std::uint16_t port) {
  return "listener " + std::to_string(port) + " 127.0.0.1\nallow_anonymous true\n";
}

MosquittoBroker::MosquittoBroker(const std::string& conf_path, const std::string& config,
                                 std::vector<std::uint16_t> ports)
    : conf_path_(conf_path), ports_(std::move(ports)) {
  std::ofstream(conf_path_) << config << "persistence false\nlog_dest none\n";
}

MosquittoBroker::~MosquittoBroker() { stop(); }

bool MosquittoBroker::start(std::chrono::milliseconds timeout) {
  stop();
  const std::string conf = conf_path_;
  pid_ = spawn([conf] {
    ::execl(kBinary, kBinary, "-c", conf.c_str(), static_cast<char*>(nullptr));
    return 127;
  });
  if (pid_ <= 0) return false;
  return wait_until(
      [&] {
        for (const std::uint16_t p : ports_)
          if (!port_open(p)) return false;
        return true;
      },
      timeout);
}

void MosquittoBroker::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  (void)reap(pid_, std::chrono::seconds(10));
  pid_ = -1;
}

}  // namespace ringpipe::testing
