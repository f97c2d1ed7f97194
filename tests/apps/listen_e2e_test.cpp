// The supervisor binds every source's sockets before it starts anything:
// /metrics answering means the StatsD socket is there, and a socket that
// is taken is refused at start, naming the address.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "e2e_util.hpp"
#include "prometheus_server.hpp"

namespace ringpipe::apps {
namespace {

using namespace std::chrono_literals;

using e2e::send_udp;

std::vector<std::string> flags(const testing::ScratchDir& dir, std::uint16_t port, std::uint16_t web) {
  return {"--statsd.listen-udp=127.0.0.1:" + std::to_string(port),
          "--statsd.listen-tcp=", "--web.listen-address=127.0.0.1:" + std::to_string(web), "--run-dir",
          dir.file("run")};
}

// A packet sent the moment /metrics first answers is counted, start after start.
TEST(ListenE2e, APacketSentTheMomentMetricsFirstAnswersIsCounted) {
  constexpr int kStarts = 8;
  for (int i = 0; i < kStarts; ++i) {
    testing::ScratchDir dir;
    const auto port = e2e::free_tcp_port();
    const auto web = e2e::free_tcp_port();
    e2e::Proc p(flags(dir, port, web), dir.file("out"), dir.file("err"));
    bool answered = false;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!answered && std::chrono::steady_clock::now() < deadline) {
      answered = exporters::testing::http_get(web, "/metrics", "", 1s).first == 200;
      if (!answered) std::this_thread::sleep_for(1ms);
    }
    ASSERT_TRUE(answered) << "start " << i << ": /metrics never answered\n" << p.err();
    ASSERT_TRUE(send_udp(port, "first_packet:1|c\n"));
    const bool counted = testing::wait_until(
        [&] {
          const auto [code, body] = exporters::testing::http_get(web, "/metrics", "", 1s);
          return code == 200 && e2e::exposition_sum(body, "first_packet") == 1.0;
        },
        10s);
    EXPECT_TRUE(counted) << "start " << i << ": the packet sent when /metrics first answered was lost\n" << p.err();
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(30s), 0) << p.err();
    if (!counted) break;
  }
}

// A StatsD port someone else holds: refused at start (78, nothing restarted),
// naming the address, instead of a source that crash-loops.
TEST(ListenE2e, ATakenStatsdPortIsRefusedAtStartNamingTheAddress) {
  testing::ScratchDir dir;
  const auto port = e2e::free_tcp_port();
  const auto web = e2e::free_tcp_port();
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const sockaddr_in a = testing::loopback_address(port);
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a), 0);
  const auto r = e2e::run(dir, flags(dir, port, web), 10s);
  ::close(fd);
  EXPECT_EQ(r.code, 78) << r.err;
  EXPECT_NE(r.err.find("udp 127.0.0.1:" + std::to_string(port) + ": bind: Address already in use"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("address already in use: stop what listens there or choose another address; nothing started"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("component statsd"), std::string::npos) << "a component was started:\n" << r.err;
}

TEST(ListenE2e, ATakenMetricsPortIsRefusedAtStartNamingTheAddress) {
  testing::ScratchDir dir;
  const auto port = e2e::free_tcp_port();
  const auto web = e2e::free_tcp_port();
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_in a = testing::loopback_address(web);
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  const auto r = e2e::run(dir, flags(dir, port, web), 10s);
  ::close(fd);
  EXPECT_EQ(r.code, 78) << r.err;
  EXPECT_NE(r.err.find("exporter prometheus: listen 127.0.0.1:" + std::to_string(web) +
                       ": bind: Address already in use; address already in use"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("CivetServer"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("component prometheus"), std::string::npos) << "a component was started:\n" << r.err;
}

// statsd_exporter's --web.listen-address=:PORT serves /metrics on IPv4 and
// IPv6 (one socket): a counter sent over UDP to 127.0.0.1 reads the same
// scraped over 127.0.0.1 and over [::1].
TEST(ListenE2e, AnEmptyWebHostServesMetricsOverIpv4AndIpv6Alike) {
  if (!testing::ipv6_loopback_available()) GTEST_SKIP() << "this host has no IPv6 loopback: [::1] cannot be bound";
  testing::ScratchDir dir;
  const auto port = e2e::free_tcp_port();
  const auto web = e2e::free_tcp_port();
  e2e::Proc p({"--statsd.listen-udp=127.0.0.1:" + std::to_string(port),
               "--statsd.listen-tcp=", "--web.listen-address=:" + std::to_string(web), "--run-dir", dir.file("run")},
              dir.file("out"), dir.file("err"));
  ASSERT_TRUE(e2e::metrics_answer(web)) << p.err();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(send_udp(port, "dual_stack_hits:2|c\n"));
  const auto scrape = [&](const std::string& host) -> std::optional<double> {
    const auto [code, body] = exporters::testing::http_get_at(host, web, "/metrics", "", 1s);
    if (code != 200) return std::nullopt;
    return e2e::exposition_sum(body, "dual_stack_hits");
  };
  EXPECT_TRUE(testing::wait_until([&] { return scrape("127.0.0.1") == 6.0; }, 10s)) << p.err();
  EXPECT_EQ(scrape("::1"), 6.0) << p.err();
  EXPECT_EQ(exporters::testing::http_get_at("::1", web, "/-/ready", "", 1s).first, 200);
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(30s), 0) << p.err();
}

// A pipeline file's exporter on [::1]:PORT serves there (the HTTP server used
// to be built without IPv6, and the address was refused).
TEST(ListenE2e, APipelineExporterListensOnIpv6Loopback) {
  if (!testing::ipv6_loopback_available()) GTEST_SKIP() << "this host has no IPv6 loopback: [::1] cannot be bound";
  testing::ScratchDir dir;
  const auto port = e2e::free_tcp_port();
  const auto web = e2e::free_tcp_port();
  const std::string file = dir.file("pipeline.yaml");
  std::ofstream(file) << "pipeline: v6\nrun_dir: " << dir.file("run") << "\n"
                      << "rings:\n  raw: {size: 1MiB}\n  metrics: {size: 1MiB}\n"
                      << "sources:\n  statsd: {type: statsd, listen: udp://127.0.0.1:" << port << ", output: raw}\n"
                      << "processors:\n  aggregate: {type: aggregate, input: raw, output: metrics}\n"
                      << "exporters:\n  prometheus: {type: prometheus, input: metrics, listen: \"[::1]:" << web
                      << "\"}\n";
  e2e::Proc p({"run", file}, dir.file("out"), dir.file("err"));
  ASSERT_TRUE(testing::wait_until(
      [&] { return exporters::testing::http_get_at("::1", web, "/metrics", "", 1s).first == 200; }, 20s))
      << p.err();
  ASSERT_TRUE(send_udp(port, "v6_hits:5|c\n"));
  EXPECT_TRUE(testing::wait_until(
      [&] {
        const auto [code, body] = exporters::testing::http_get_at("::1", web, "/metrics", "", 1s);
        return code == 200 && e2e::exposition_sum(body, "v6_hits") == 5.0;
      },
      10s))
      << p.err();
  EXPECT_EQ(exporters::testing::http_get(web, "/metrics", "", 1s).first, 0) << "[::1] is not 127.0.0.1";
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(30s), 0) << p.err();
}

// Two instances configured by flags on one host: each gets a pipeline of its
// own from its StatsD port; a second supervisor of a live pipeline is refused
// at once, told the live pid and how to choose another name.
TEST(ListenE2e, FlagInstancesGetTheirOwnPipelineAndASecondSupervisorIsRefused) {
  testing::ScratchDir dir;
  const auto port_a = e2e::free_tcp_port();
  const auto web_a = e2e::free_tcp_port();
  const auto port_b = e2e::free_tcp_port();
  const auto web_b = e2e::free_tcp_port();
  e2e::Proc a(flags(dir, port_a, web_a), dir.file("a.out"), dir.file("a.err"));
  e2e::Proc b(flags(dir, port_b, web_b), dir.file("b.out"), dir.file("b.err"));
  ASSERT_TRUE(e2e::metrics_answer(web_a)) << a.err();
  ASSERT_TRUE(e2e::metrics_answer(web_b)) << b.err();
  EXPECT_TRUE(std::filesystem::exists(dir.file("run/statsd-" + std::to_string(port_a) + "/raw")));
  EXPECT_TRUE(std::filesystem::exists(dir.file("run/statsd-" + std::to_string(port_b) + "/raw")));
  ASSERT_TRUE(send_udp(port_a, "only_a:1|c\n"));
  ASSERT_TRUE(send_udp(port_b, "only_b:2|c\n"));
  EXPECT_TRUE(testing::wait_until([&] { return e2e::scraped_sum(web_a, "only_a") == 1.0; }, 10s)) << a.err();
  EXPECT_TRUE(testing::wait_until([&] { return e2e::scraped_sum(web_b, "only_b") == 2.0; }, 10s)) << b.err();
  EXPECT_EQ(e2e::scraped_sum(web_a, "only_b"), std::nullopt);

  // Other ports, but told to run A's pipeline: refused at once (no retries).
  const auto port_c = e2e::free_tcp_port();
  const auto web_c = e2e::free_tcp_port();
  const auto started = std::chrono::steady_clock::now();
  auto args = flags(dir, port_c, web_c);
  args.insert(args.end(), {"--pipeline", "statsd-" + std::to_string(port_a)});
  const auto c = e2e::run(dir, args, 10s);
  EXPECT_EQ(c.code, 78) << c.err;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_NE(c.err.find("pipeline statsd-" + std::to_string(port_a) + " in " + dir.file("run") +
                       " is already run by a live supervisor, pid " + std::to_string(a.pid()) +
                       "; give this instance a pipeline of its own with `ringpipe run --pipeline NAME`"),
            std::string::npos)
      << c.err;
  EXPECT_EQ(c.err.find("already attached"), std::string::npos) << c.err;
  // A is untouched.
  ASSERT_TRUE(send_udp(port_a, "only_a:1|c\n"));
  EXPECT_TRUE(testing::wait_until([&] { return e2e::scraped_sum(web_a, "only_a") == 2.0; }, 10s)) << a.err();
  a.signal(SIGTERM);
  b.signal(SIGTERM);
  EXPECT_EQ(a.wait(30s), 0) << a.err();
  EXPECT_EQ(b.wait(30s), 0) << b.err();
}

// Counters survive a clean restart, and the log says so; --fresh starts empty.
TEST(ListenE2e, StateSurvivesARestartVisiblyAndFreshStartsEmpty) {
  testing::ScratchDir dir;
  const auto port = e2e::free_tcp_port();
  const auto web = e2e::free_tcp_port();
  {
    e2e::Proc p(flags(dir, port, web), dir.file("1.out"), dir.file("1.err"));
    ASSERT_TRUE(e2e::metrics_answer(web)) << p.err();
    EXPECT_NE(p.err().find("no previous state in " + dir.file("run/statsd-" + std::to_string(port))), std::string::npos)
        << p.err();
    ASSERT_TRUE(send_udp(port, "kept:5|c\n"));
    EXPECT_TRUE(testing::wait_until([&] { return e2e::scraped_sum(web, "kept") == 5.0; }, 10s)) << p.err();
    p.signal(SIGTERM);
    ASSERT_EQ(p.wait(30s), 0) << p.err();
  }
  {
    e2e::Proc p(flags(dir, port, web), dir.file("2.out"), dir.file("2.err"));
    ASSERT_TRUE(e2e::metrics_answer(web)) << p.err();
    EXPECT_NE(p.err().find("state of the previous run kept"), std::string::npos) << p.err();
    EXPECT_NE(p.err().find("start empty with `ringpipe run --fresh`"), std::string::npos) << p.err();
    EXPECT_TRUE(testing::wait_until([&] { return e2e::scraped_sum(web, "kept") == 5.0; }, 10s)) << p.err();
    p.signal(SIGTERM);
    ASSERT_EQ(p.wait(30s), 0) << p.err();
  }
  {
    auto args = flags(dir, port, web);
    args.emplace_back("--fresh");
    e2e::Proc p(args, dir.file("3.out"), dir.file("3.err"));
    ASSERT_TRUE(e2e::metrics_answer(web)) << p.err();
    EXPECT_NE(p.err().find("--fresh: removed"), std::string::npos) << p.err();
    ASSERT_TRUE(send_udp(port, "marker:1|c\n"));
    EXPECT_TRUE(testing::wait_until([&] { return e2e::scraped_sum(web, "marker") == 1.0; }, 10s)) << p.err();
    EXPECT_EQ(e2e::scraped_sum(web, "kept"), std::nullopt) << "a counter of the previous run came back after --fresh";
    p.signal(SIGTERM);
    ASSERT_EQ(p.wait(30s), 0) << p.err();
  }
}

// Bytes the files under `dir` take (allocated blocks, not apparent sizes).
std::uint64_t allocated_bytes(const std::string& dir) {
  std::uint64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    struct stat st {};
    if (::lstat(e.path().c_str(), &st) == 0) total += static_cast<std::uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

// Docker gives a container 64 MiB of /dev/shm by default: the built-in
// pipeline, running with a series in it, takes well under that.
TEST(ListenE2e, TheBuiltInPipelineFitsDockersDefault64MiBOfShm) {
  testing::ScratchDir dir;
  const auto port = e2e::free_tcp_port();
  const auto web = e2e::free_tcp_port();
  e2e::Proc p(flags(dir, port, web), dir.file("out"), dir.file("err"));
  ASSERT_TRUE(e2e::metrics_answer(web)) << p.err();
  ASSERT_TRUE(send_udp(port, "fits:1|c\n"));
  EXPECT_TRUE(testing::wait_until([&] { return e2e::scraped_sum(web, "fits") == 1.0; }, 10s)) << p.err();
  const std::uint64_t used = allocated_bytes(dir.file("run"));
  EXPECT_LT(used, std::uint64_t{56} << 20) << used << " bytes in " << dir.file("run");
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(30s), 0) << p.err();
}

// A run dir without room for the rings: refused before anything is created,
// saying how much is free, how much is needed and what to do.
TEST(ListenE2e, ARunDirWithoutRoomForTheRingsIsRefusedSayingWhatToDo) {
  testing::ScratchDir dir;
  struct statvfs fs {};
  ASSERT_EQ(::statvfs(dir.path().c_str(), &fs), 0);
  const std::uint64_t free = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  std::uint64_t size = std::uint64_t{1} << 20;
  while (size <= free) size <<= 1;  // a power of two beyond the free space
  const std::string file = dir.file("p.yaml");
  e2e::write_text(
      file, "pipeline: big\nrun_dir: " + dir.file("run") + "\nrings: {raw: {size: " + std::to_string(size >> 20) +
                "MiB}}\nsources: {s: {type: statsd, listen: [udp://127.0.0.1:" + std::to_string(e2e::free_tcp_port()) +
                "], output: raw}}\n"
                "exporters: {prom: {type: prometheus, input: raw, listen: 127.0.0.1:" +
                std::to_string(e2e::free_tcp_port()) + "}}\n");
  const auto r = e2e::run(dir, {"run", file}, 10s);
  EXPECT_EQ(r.code, 78) << r.err;
  EXPECT_NE(r.err.find("run dir " + dir.file("run") + " has "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Docker: --shm-size=128m"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("run/big/raw")));
}

}  // namespace
}  // namespace ringpipe::apps
