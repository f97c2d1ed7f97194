// kill -9 of a UDP source under load: the supervisor holds the socket the
// source received on, so what the kernel queued while the source was dead is
// read by its successor. Every line sent is in the ring, counted by the
// kernel as dropped on a full socket buffer, or was in the one receive batch
// the killed source had taken from the socket and not yet published: whole
// datagrams, at most batch_packets (UdpConfig's default) of them per kill. Nothing is invented
// and no datagram is split.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "e2e_util.hpp"
#include "ringpipe/ingest/ingest_server.hpp"
#include "status_file.hpp"

namespace ringpipe::apps {
namespace {

using namespace std::chrono_literals;

// Datagrams the kernel dropped on the UDP sockets bound to `port` (the drops
// column of /proc/net/udp and udp6); what SO_RXQ_OVFL reports to the source.
std::uint64_t kernel_udp_drops(std::uint16_t port) {
  std::uint64_t drops = 0;
  for (const char* table : {"/proc/net/udp", "/proc/net/udp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string slot, local, remote, st, queues, tr, retrnsmt, uid, timeout, inode, ref, pointer;
      std::uint64_t d = 0;
      f >> slot >> local >> remote >> st >> queues >> tr >> retrnsmt >> uid >> timeout >> inode >> ref >> pointer >> d;
      const auto colon = local.rfind(':');
      if (colon == std::string::npos) continue;
      if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) drops += d;
    }
  }
  return drops;
}

std::uint32_t running_pid(const std::string& run_dir, const std::string& pipeline, const std::string& name) {
  auto s = read_status_file(status_file_path(run_dir, pipeline));
  if (!s) return 0;
  for (const auto& c : s->components)
    if (c.name == name && c.state == ComponentState::kRunning && c.pid > 0 && ::kill(static_cast<pid_t>(c.pid), 0) == 0)
      return c.pid;
  return 0;
}

TEST(SourceKillUdp, KillNineOfTheSourceUnderUdpLoadLosesNoQueuedLine) {
  testing::ScratchDir dir;
  const std::uint16_t port = e2e::free_tcp_port();
  const std::uint16_t web = e2e::free_tcp_port();
  const std::string file = dir.file("p.yaml");
  e2e::write_text(file, "pipeline: udpkill\nrun_dir: " + dir.path().string() + R"(
rings:
  raw: {size: 16MiB, lanes: 4, overflow: block, reader_timeout: 5s}
  metrics: {size: 4MiB, lanes: 4, overflow: block}
sources:
  statsd: {type: statsd, listen: [udp://127.0.0.1:)" +
                            std::to_string(port) +
                            R"(], output: raw}
processors:
  aggregate: {type: aggregate, input: raw, output: metrics, flush_interval: 100ms}
exporters:
  prometheus: {type: prometheus, input: metrics, listen: 127.0.0.1:)" +
                            std::to_string(web) + "}\n");
  e2e::Proc sup({"run", file}, dir.file("sup.out"), dir.file("sup.err"));
  const std::string run_dir = dir.path().string();
  ASSERT_TRUE(testing::wait_until([&] { return running_pid(run_dir, "udpkill", "statsd") != 0; }, 20s)) << sup.err();
  auto audit = e2e::SampleAudit::attach(dir.file("udpkill/raw"), "udp_kill_lines");
  ASSERT_NE(audit, nullptr);

  // 20 lines per datagram, 1000 datagrams/s (20,000 lines/s), for 4 s.
  constexpr int kLinesPerDatagram = 20;
  constexpr int kDatagrams = 4000;
  std::atomic<bool> sending{true};
  std::uint64_t sent_lines = 0;
  std::thread sender([&] {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const sockaddr_in a = testing::loopback_address(port);
    const std::string datagram = e2e::lines("udp_kill_lines:1|c", kLinesPerDatagram);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kDatagrams; ++i) {
      std::this_thread::sleep_until(start + std::chrono::microseconds(1000) * i);
      if (::sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<const sockaddr*>(&a), sizeof a) ==
          static_cast<ssize_t>(datagram.size()))
        sent_lines += kLinesPerDatagram;
    }
    ::close(fd);
    sending = false;
  });
  // Three kill -9s of the source while the load runs, each once its successor runs.
  for (int k = 0; k < 3; ++k) {
    std::this_thread::sleep_for(800ms);
    const std::uint32_t pid = running_pid(run_dir, "udpkill", "statsd");
    ASSERT_NE(pid, 0U) << sup.err();
    ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGKILL), 0);
    EXPECT_TRUE(testing::wait_until(
        [&] {
          const auto now = running_pid(run_dir, "udpkill", "statsd");
          return now != 0 && now != pid;
        },
        10s))
        << "kill " << k << ": the source is not back\n"
        << sup.err();
  }
  sender.join();
  // Settled: the sender is done and the ring's count has not moved for a
  // second (the successor read what the kernel held for it).
  std::uint64_t last = audit->count();
  int quiet = 0;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        std::this_thread::sleep_for(200ms);
        const std::uint64_t now = audit->count();
        quiet = now == last ? quiet + 1 : 0;
        last = now;
        return quiet >= 5 || now + kernel_udp_drops(port) * kLinesPerDatagram >= sent_lines;
      },
      30s))
      << "counted " << audit->count() << " of " << sent_lines << " lines sent\n"
      << sup.err();
  EXPECT_FALSE(audit->lapped());
  // Nothing invented; nothing lost but what the kernel counted and, at most,
  // the receive batch in the hands of each killed source (uncountable: it was
  // taken from the socket and died with the process), in whole datagrams.
  const std::uint64_t counted = audit->count();
  const std::uint64_t kernel = kernel_udp_drops(port) * kLinesPerDatagram;
  ASSERT_LE(counted + kernel, sent_lines) << "kernel drops " << kernel_udp_drops(port);
  const std::uint64_t lost = sent_lines - counted - kernel;
  // The pipeline leaves the UDP receive batch at its default.
  constexpr std::uint64_t kKills = 3, kBatchPackets = ingest::UdpConfig{}.batch_packets;
  EXPECT_EQ(lost % kLinesPerDatagram, 0U) << "a datagram was split: " << lost << " lines lost";
  EXPECT_LE(lost, kKills * kBatchPackets * kLinesPerDatagram)
      << "lost " << lost << " lines: more than the three kills' receive batches; kernel drops "
      << kernel_udp_drops(port);
  sup.signal(SIGTERM);
  EXPECT_EQ(sup.wait(30s), 0) << sup.err();
}

}  // namespace
}  // namespace ringpipe::apps
