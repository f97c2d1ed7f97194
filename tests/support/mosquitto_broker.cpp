#include "mosquitto_broker.hpp"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <utility>

#include "loopback.hpp"
#include "test_support.hpp"

namespace ringpipe::testing {
bool MosquittoBroker::available() { return ::access(kBinary, X_OK) == 0; }

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
          if (!tcp_port_open(p)) return false;
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
