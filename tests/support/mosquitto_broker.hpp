#pragma once
// Debian's mosquitto broker for the MQTT tests: one process on 127.0.0.1,
// configured by a mosquitto.conf written into a scratch directory (listeners
// and options given by the test; persistence and logging are always off),
// started on demand and killed (SIGKILL) and reaped by stop() or the
// destructor, so a restart mid-test is stop() + start(). Not thread-safe.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace ringpipe::testing {

class MosquittoBroker {
 public:
  static constexpr const char* kBinary = "/usr/sbin/mosquitto";
  // Whether the broker binary is installed (tests skip otherwise).
  [[nodiscard]] static bool available();
  // "listener <port> 127.0.0.1" plus anonymous access: the usual test broker.
  [[nodiscard]] static std::string anonymous_listener(std::uint16_t port);

  // `config` holds the listeners and options; `ports` are the listeners'
  // ports, which start() waits on. Writes the file, starts nothing.
  MosquittoBroker(const std::string& conf_path, const std::string& config, std::vector<std::uint16_t> ports);
  ~MosquittoBroker();
  MosquittoBroker(const MosquittoBroker&) = delete;
  MosquittoBroker& operator=(const MosquittoBroker&) = delete;

  // Starts the broker and waits until every port accepts connections.
  [[nodiscard]] bool start(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void stop();
  [[nodiscard]] std::uint16_t port() const { return ports_.front(); }

 private:
  std::string conf_path_;
  std::vector<std::uint16_t> ports_;
  pid_t pid_ = -1;
};

}  // namespace ringpipe::testing
