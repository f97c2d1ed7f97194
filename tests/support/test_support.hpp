#pragma once
// Helpers shared by the test binaries: scratch directories and bounded waits.
// Not thread-safe unless stated.

#include <sys/mman.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "loopback.hpp"  // free_tcp_port(), tcp_port_open()

namespace ringpipe::testing {

// A fresh directory under /dev/shm (or $TMPDIR) removed with everything in it
// when the object dies.
// A deterministic xorshift64 stream for randomized tests: the same seed, the
// same cases on every machine (a failure reproduces).
class XorShift64 {
 public:
  explicit XorShift64(std::uint64_t seed) noexcept : x_(seed) {}
  std::uint64_t operator()() noexcept {
    x_ ^= x_ << 13;
    x_ ^= x_ >> 7;
    x_ ^= x_ << 17;
    return x_;
  }

 private:
  std::uint64_t x_;
};

class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Polls pred every few milliseconds until it holds or the timeout passes.
[[nodiscard]] bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

// Runs body in a forked child that exits with body's return value.
pid_t spawn(const std::function<int()>& body);

// Waits for a child at most `limit`; one that overstays is killed and the
// test fails. Returns its exit code, or 100 + the signal that ended it.
int reap(pid_t pid, std::chrono::seconds limit = std::chrono::seconds(60));

// A program run by path (argv[0]) with stdout and stderr appended to
// `log_file`; it dies with the test (PR_SET_PDEATHSIG). stop() sends
// SIGTERM, then SIGKILL after `grace`; the destructor stops it.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& log_file);
  ~Child() { stop(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // Its exit code once it exited (128 + signal when killed); -1 after `timeout`, when it is killed.
  int wait(std::chrono::milliseconds timeout);
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

 private:
  pid_t pid_ = -1;
};

// An HTTP/1.1 server on 127.0.0.1:0 that answers every request with one
// canned response after `delay` (Connection: close). Serves on its own thread
// until destroyed; counts the requests it saw and keeps the last one.
class CannedHttpServer {
 public:
  CannedHttpServer(int status, std::string content_type, std::string body,
                   std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  ~CannedHttpServer();
  CannedHttpServer(const CannedHttpServer&) = delete;
  CannedHttpServer& operator=(const CannedHttpServer&) = delete;
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] int requests() const noexcept { return requests_.load(); }
  [[nodiscard]] std::string last_request();

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::string response_;
  std::chrono::milliseconds delay_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::string last_request_;
  std::mutex mu_;  // guards last_request_
  std::thread thread_;
};

// A value-initialised T in anonymous shared memory: parent and forked
// children see the same object (T should hold atomics). Never freed.
template <class T>
T* make_shared_block() {
  void* p = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return new (p) T{};
}

// True when built with ThreadSanitizer (tests that race on purpose skip then).
[[nodiscard]] constexpr bool under_tsan() {
#if defined(__SANITIZE_THREAD__)
  return true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

// True under AddressSanitizer or ThreadSanitizer, whose builds run several
// times slower: wall-clock bounds on whole processes are relaxed there.
[[nodiscard]] constexpr bool under_sanitizer() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

}  // namespace ringpipe::testing
