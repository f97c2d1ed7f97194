// The real `ringpipe` binary given statsd_exporter's process flags:
// --check-config, --version, --log.level, --log.format, the relay flags, and
// options neither run nor statsd_exporter knows.

#include <gtest/gtest.h>

#include <filesystem>

#include "e2e_util.hpp"

namespace ringpipe::apps {
namespace {

using e2e::run;

constexpr auto kQuick = std::chrono::seconds(10);

// Flags for a built-in pipeline that cannot collide with anything else on
// the machine: loopback, fixed free ports, rings under dir/run.
std::vector<std::string> isolated_flags(const testing::ScratchDir& dir, std::uint16_t port, std::uint16_t web) {
  return {"--statsd.listen-udp=127.0.0.1:" + std::to_string(port), "--statsd.listen-tcp=127.0.0.1:" + std::to_string(port),
          "--web.listen-address=127.0.0.1:" + std::to_string(web), "--run-dir", dir.file("run")};
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Relaying is not implemented: refused as a configuration error (78, systemd
// does not restart it) before anything starts.
TEST(DropinFlagsE2e, RelayFlagsAreAConfigurationErrorAndStartNothing) {
  testing::ScratchDir dir;
  const auto port = e2e::free_tcp_port();
  const auto web = e2e::free_tcp_port();
  for (const std::string flag : {"--statsd.relay.address=127.0.0.1:9999", "--statsd.relay.packet-length=1400"}) {
    const auto r = run(dir, std::vector<std::string>{flag} + isolated_flags(dir, port, web), kQuick);
    EXPECT_EQ(r.code, 78) << flag;
    EXPECT_NE(r.err.find("relaying is not supported by ringpipe"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir.file("run")));
  }
}

}  // namespace
}  // namespace ringpipe::apps
