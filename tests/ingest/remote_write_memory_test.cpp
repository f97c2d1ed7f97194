// The remote_write receiver's memory under hostile senders, measured as the
// peak RSS (VmHWM) of a child process that runs only the receiver: a 3.9 MB
// request of 41 M empty series, then 100 connections each sending all but
// the last byte of a 5 MB body. Every wait is bounded.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "memory_target.hpp"
#include "remote_write_test_util.hpp"
#include "ringpipe/ingest/remote_write_source.hpp"
#include "test_support.hpp"

namespace ringpipe::ingest {
namespace {

using namespace std::chrono_literals;

// What docs/guarantees.md promises for the default limits: the receiver's
// RSS stays under 256 MiB whatever the senders do.
constexpr std::uint64_t kRssCeilingKiB = 256 * 1024;
constexpr int kPartialBodies = 100;
constexpr std::size_t kPartialBodyBytes = 5u << 20;

struct Shared {
  std::atomic<std::uint16_t> port{0};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> body_refusals{0};
  std::atomic<std::uint64_t> too_large{0};
};

// kB of a "VmHWM:" or "VmRSS:" line of /proc/<pid>/status; 0 if absent.
std::uint64_t status_kib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1));
  }
  return 0;
}

int run_receiver(Shared* shared) {
  auto store = std::make_shared<testing::MemoryStore>();
  RemoteWriteConfig c;  // the default limits are what is measured
  c.port = 0;
  auto src = RemoteWriteSource::create(c, testing::memory_targets(store));
  if (!src || !(*src)->start()) return 10;
  shared->port.store((*src)->port());
  for (int i = 0; i < 12'000 && !shared->stop.load(); ++i) {  // bounded: 120 s
    const RemoteWriteStats& rw = (*src)->remote_write_stats();
    shared->body_refusals.store(rw.body_refusals.load());
    shared->too_large.store(rw.answered(RemoteWriteAnswer::k413));
    {
      std::lock_guard lock(store->mu);
      store->records.clear();  // the memory target's own copies are not the receiver's
    }
    std::this_thread::sleep_for(10ms);
  }
  (*src)->stop();
  return 0;
}

int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST(RemoteWriteMemory, HostileRequestsAndPartialBodiesKeepTheReceiverUnderItsRssCeiling) {
  auto* shared = ringpipe::testing::make_shared_block<Shared>();
  ASSERT_NE(shared, nullptr);
  const pid_t child = ringpipe::testing::spawn([shared] { return run_receiver(shared); });
  ASSERT_GT(child, 0);
  ASSERT_TRUE(ringpipe::testing::wait_until([&] { return shared->port.load() != 0; }, 10s));
  const std::uint16_t port = shared->port.load();
  const std::uint64_t idle_kib = status_kib(child, "VmRSS");

  // 41,943,040 empty TimeSeries (2 bytes each: 80 MiB, the default
  // uncompressed limit) snappy to about 3.9 MB.
  std::string raw;
  for (int i = 0; i < 41'943'040; ++i) raw.append("\x0a\x00", 2);
  const std::string hostile = testing::snappy_of(raw);
  raw = {};
  net::HttpClient client(net::HttpUrl{"127.0.0.1", std::to_string(port), "/"});
  const net::HttpResponse r = testing::post(client, hostile);
  EXPECT_EQ(r.status, 413) << r.body;
  const std::uint64_t after_hostile_kib = status_kib(child, "VmRSS");

  // 100 senders, each stalled one byte before the end of a 5 MB body.
  std::vector<int> fds;
  const std::string body(kPartialBodyBytes - 1, 'x');
  const std::string header =
      "POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Encoding: snappy\r\n"
      "Content-Type: application/x-protobuf\r\nContent-Length: " +
      std::to_string(kPartialBodyBytes) + "\r\n\r\n";
  std::vector<std::size_t> sent(kPartialBodies, 0);
  for (int i = 0; i < kPartialBodies; ++i) {
    const int fd = connect_loopback(port);
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
    ASSERT_EQ(::send(fd, header.data(), header.size(), MSG_NOSIGNAL), static_cast<ssize_t>(header.size()));
  }
  // Push the bodies round-robin without blocking until all is sent or refused
  // (bounded: 30 s).
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  int refused = 0;
  std::vector<bool> done(kPartialBodies, false);
  for (int left = kPartialBodies; left > 0 && std::chrono::steady_clock::now() < deadline;) {
    left = 0;
    for (int i = 0; i < kPartialBodies; ++i) {
      const auto at = static_cast<std::size_t>(i);
      if (done[at]) continue;
      char answer[64];
      const ssize_t got = ::recv(fds[at], answer, sizeof answer, MSG_DONTWAIT);
      if (got > 0 || got == 0) {  // answered (a refusal) or closed before the body was read
        done[at] = true;
        refused +=
            got > 0 && std::string_view(answer, static_cast<std::size_t>(got)).find(" 503 ") != std::string::npos;
        continue;
      }
      const ssize_t n = ::send(fds[at], body.data() + sent[at], body.size() - sent[at], MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) sent[at] += static_cast<std::size_t>(n);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) done[at] = true;
      if (sent[at] == body.size()) done[at] = true;
      if (!done[at]) ++left;
    }
    if (left > 0) std::this_thread::sleep_for(1ms);
  }
  std::this_thread::sleep_for(500ms);  // let the receiver take in what is in its socket buffers
  const std::uint64_t peak_kib = status_kib(child, "VmHWM");
  const std::uint64_t rss_kib = status_kib(child, "VmRSS");
  for (int fd : fds) ::close(fd);

  // Still answering afterwards.
  prometheus::WriteRequest ok;
  testing::add_series(ok, {{"__name__", "m"}}, {{1, 1'700'000'000'000}});
  EXPECT_EQ(testing::post(client, testing::encode(ok)).status, 204);
  const std::uint64_t body_refusals = shared->body_refusals.load();
  shared->stop.store(true);
  EXPECT_EQ(ringpipe::testing::reap(child, 30s), 0);

  std::printf(
      "receiver RSS: idle %llu KiB, after the hostile request %llu KiB, with %d partial bodies %llu KiB, "
      "peak %llu KiB; %llu bodies refused (%d answers of 503 seen)\n",
      static_cast<unsigned long long>(idle_kib), static_cast<unsigned long long>(after_hostile_kib), kPartialBodies,
      static_cast<unsigned long long>(rss_kib), static_cast<unsigned long long>(peak_kib),
      static_cast<unsigned long long>(body_refusals), refused);
  EXPECT_LT(peak_kib, kRssCeilingKiB);
  EXPECT_LT(after_hostile_kib, idle_kib + 16 * 1024) << "the hostile request's memory is given back";
  EXPECT_GT(body_refusals, 0u) << "bodies over the in-flight budget are refused, not buffered";
  EXPECT_GT(refused, 0) << "a refusal is a 503, which the sender retries";
}

}  // namespace
}  // namespace ringpipe::ingest
