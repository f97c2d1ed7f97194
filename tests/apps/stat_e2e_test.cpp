// `ringpipe stat` against the real binary: the lines/s a bounded UDP stream
// of known rate makes, an 80x24 frame for the built-in pipeline, and a
// processor killed with SIGKILL whose reader and gate do not read as lag
// once it is back.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "e2e_util.hpp"

namespace ringpipe::apps {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> pipeline_flags(const testing::ScratchDir& dir, std::uint16_t port, std::uint16_t web) {
  return {"--statsd.listen-udp=127.0.0.1:" + std::to_string(port),
          "--statsd.listen-tcp=", "--web.listen-address=127.0.0.1:" + std::to_string(web), "--run-dir",
          dir.file("run")};
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t eol = std::min(text.find('\n', at), text.size());
    out.push_back(text.substr(at, eol - at));
    at = eol + 1;
  }
  return out;
}

// The first line starting with `name` followed by a space.
std::string line_for(const std::string& frame, const std::string& name) {
  for (const std::string& l : lines_of(frame))
    if (l.rfind(name + " ", 0) == 0) return l;
  return "";
}

// "20.0k" -> 20000, "950" -> 950; -1 when not a count.
double parse_count(const std::string& s) {
  std::smatch m;
  if (!std::regex_match(s, m, std::regex(R"(([0-9.]+)([kMG]?))"))) return -1;
  const double scale = m[2] == "k" ? 1e3 : m[2] == "M" ? 1e6 : m[2] == "G" ? 1e9 : 1;
  return std::stod(m[1]) * scale;
}

std::vector<std::string> fields(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string f; in >> f;) out.push_back(f);
  return out;
}

// Sends `per_second` StatsD lines a second over UDP to 127.0.0.1:port, 100
// lines a datagram, until stopped; counts what it sent.
class UdpStream {
 public:
  UdpStream(std::uint16_t port, int per_second) : port_(port), per_second_(per_second) {
    thread_ = std::thread([this] { loop(); });
  }
  ~UdpStream() { stop(); }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] std::uint64_t sent() const { return sent_.load(); }

 private:
  void loop() {
    constexpr int kLinesPerPacket = 100;
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const sockaddr_in a = testing::loopback_address(port_);
    std::string packet;
    for (int i = 0; i < kLinesPerPacket; ++i) packet += "stat_flow_lines:1|c\n";
    const auto start = std::chrono::steady_clock::now();
    std::uint64_t packets = 0;
    while (!stop_.load()) {
      // Paced against the start, so a late wake-up catches up and the mean rate holds.
      const auto due = start + std::chrono::microseconds(packets * 1'000'000 * kLinesPerPacket / per_second_);
      std::this_thread::sleep_until(due);
      if (::sendto(fd, packet.data(), packet.size(), 0, reinterpret_cast<const sockaddr*>(&a), sizeof a) > 0) {
        sent_.fetch_add(kLinesPerPacket);
      }
      ++packets;
    }
    ::close(fd);
  }

  std::uint16_t port_;
  int per_second_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> sent_{0};
  std::thread thread_;
};

TEST(StatE2e, ShowsLinesPerSecondSeriesAndLagInAnEightyByTwentyFourFrameAndNoLagAfterAProcessorKill) {
  testing::ScratchDir dir;
  const auto port = e2e::free_tcp_port();
  const auto web = e2e::free_tcp_port();
  const std::vector<std::string> flags = pipeline_flags(dir, port, web);
  std::vector<std::string> run_args = {"run"};
  run_args.insert(run_args.end(), flags.begin(), flags.end());
  e2e::Proc p(run_args, dir.file("out"), dir.file("err"));
  std::vector<std::string> stat_args = {"stat", "--once", "--interval", "2s"};
  stat_args.insert(stat_args.end(), flags.begin(), flags.end());
  auto stat = [&] { return e2e::run(dir, stat_args, 20s); };

  // Up: every component running.
  std::string frame;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto r = stat();
        frame = r.out;
        return r.code == 0 && line_for(frame, "statsd").find("running") != std::string::npos &&
               line_for(frame, "aggregate").find("running") != std::string::npos &&
               line_for(frame, "prometheus").find("running") != std::string::npos;
      },
      30s))
      << frame << p.err();

  constexpr int kRate = 20'000;
  UdpStream stream(port, kRate);
  std::this_thread::sleep_for(1s);
  const auto during = stat();
  ASSERT_EQ(during.code, 0) << during.err;
  const std::vector<std::string> frame_lines = lines_of(during.out);
  EXPECT_LE(frame_lines.size(), 24U) << during.out;
  for (const std::string& l : frame_lines) EXPECT_LE(l.size(), 80U) << l;

  // FLOW: statsd  <lines/s> <samples/s> <lines> <samples>, after the
  // COMPONENT table's statsd line.
  const auto flow_at = during.out.find("\nFLOW");
  ASSERT_NE(flow_at, std::string::npos) << during.out;
  const std::vector<std::string> statsd = fields(line_for(during.out.substr(flow_at + 1), "statsd"));
  ASSERT_GE(statsd.size(), 5U) << during.out;
  const double lines_per_s = parse_count(statsd[1]);
  EXPECT_GT(lines_per_s, kRate * 0.5) << during.out;
  EXPECT_LT(lines_per_s, kRate * 1.5) << during.out;
  EXPECT_GT(parse_count(statsd[2]), kRate * 0.5) << "one sample a line\n" << during.out;
  EXPECT_NE(during.out.find("1 of 1.00M (0.0%)"), std::string::npos) << "one series of the default budget\n"
                                                                     << during.out;
  EXPECT_NE(during.out.find("  aggregate.c  gate"), std::string::npos) << during.out;

  // kill -9 of the processor: it comes back, catches up, and neither its
  // reader nor its gate reads as lag.
  const std::vector<std::string> component = fields(line_for(during.out, "aggregate"));
  ASSERT_GE(component.size(), 4U) << during.out;
  const pid_t processor = std::stoi(component[3]);
  ASSERT_EQ(::kill(processor, SIGKILL), 0);
  std::string after;
  const bool settled = testing::wait_until(
      [&] {
        const auto r = stat();
        after = r.out;
        const std::vector<std::string> c = fields(line_for(after, "aggregate"));
        if (c.size() < 4 || c[2] != "running" || c[3] == std::to_string(processor)) return false;
        const auto ring_at = after.find("\nRING / READER");
        if (ring_at == std::string::npos) return false;
        const std::vector<std::string> reader = fields(line_for(after.substr(ring_at + 1), "  aggregate"));
        // aggregate active <rec/s> <lag> <lag rec> <lag bytes>
        return reader.size() >= 6 && reader[1] == "active" && parse_count(reader[4]) >= 0 &&
               parse_count(reader[4]) < kRate / 2.0;
      },
      40s);
  EXPECT_TRUE(settled) << after << p.err();
  const auto ring_at = after.find("\nRING / READER");
  ASSERT_NE(ring_at, std::string::npos) << after;
  const std::string gate = line_for(after.substr(ring_at + 1), "  aggregate.c");
  EXPECT_NE(gate.find("gate"), std::string::npos) << after;
  EXPECT_NE(gate.find("uncommitted"), std::string::npos) << after;
  EXPECT_EQ(gate.find("lag"), std::string::npos) << after;
  stream.stop();
  EXPECT_GT(stream.sent(), 0U);
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(30s), std::optional<int>(0)) << p.err();
}

}  // namespace
}  // namespace ringpipe::apps
