// The real `ringpipe` binary given statsd_exporter's process flags:
// --check-config, --version, --log.level, --log.format, the relay flags, and
// options neither run nor statsd_exporter knows; and README.md's "Try it"
// lines run against it as they are written.

#include <gtest/gtest.h>

#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <regex>
#include <set>

#include "e2e_util.hpp"

namespace ringpipe::apps {
namespace {

using e2e::run;

constexpr auto kQuick = std::chrono::seconds(10);

// Flags for a built-in pipeline that cannot collide with anything else on
// the machine: loopback, fixed free ports, rings under dir/run.
std::vector<std::string> isolated_flags(const testing::ScratchDir& dir, std::uint16_t port, std::uint16_t web) {
  return {"--statsd.listen-udp=127.0.0.1:" + std::to_string(port),
          "--statsd.listen-tcp=127.0.0.1:" + std::to_string(port),
          "--web.listen-address=127.0.0.1:" + std::to_string(web), "--run-dir", dir.file("run")};
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t eol = std::min(text.find('\n', at), text.size());
    out.push_back(text.substr(at, eol - at));
    at = eol + 1;
  }
  return out;
}

constexpr std::string_view kGoodMapping = "mappings:\n- match: a.*.b\n  name: a_b\n  labels: {x: $1}\n";
constexpr std::string_view kBadMapping = "mappings:\n- match: a.*\n  name: 1a\n";

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

// statsd_exporter's --check-config loads the configuration and exits; a CI
// step that runs it must not find a pipeline holding its ports.
TEST(DropinFlagsE2e, CheckConfigValidatesFlagsAndMappingAndExitsWithoutStartingAnything) {
  testing::ScratchDir dir;
  const std::string mapping = dir.file("m.yml");
  e2e::write_text(mapping, std::string(kGoodMapping));
  const auto port = e2e::free_tcp_port();
  const auto web = e2e::free_tcp_port();
  const auto ok = run(
      dir,
      std::vector<std::string>{"--check-config", "--statsd.mapping-config=" + mapping} + isolated_flags(dir, port, web),
      kQuick);
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ok.out, "ringpipe: configuration ok: the built-in pipeline with statsd_exporter flags: pipeline statsd-" +
                        std::to_string(port) +
                        ", 2 rings, 1 sources, 1 processors, 1 exporters, 1 mapping rules; nothing started\n");
  EXPECT_EQ(ok.err, "");
  EXPECT_FALSE(std::filesystem::exists(dir.file("run"))) << "rings were created";

  e2e::write_text(mapping, std::string(kBadMapping));
  const auto bad = run(dir,
                       std::vector<std::string>{"run", "--check-config", "--statsd.mapping-config", mapping} +
                           isolated_flags(dir, port, web),
                       kQuick);
  EXPECT_EQ(bad.code, 78);
  EXPECT_EQ(bad.out, "");
  EXPECT_NE(bad.err.find(mapping + ":3:9: mappings[0] name: found invalid metric name \"1a\""), std::string::npos)
      << bad.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("run")));

  const auto bad_flag = run(dir, {"--check-config", "--statsd.cache-type=fifo"}, kQuick);
  EXPECT_EQ(bad_flag.code, 78);
  EXPECT_NE(bad_flag.err.find("--statsd.cache-type: found \"fifo\", expected lru or random"), std::string::npos)
      << bad_flag.err;
}

TEST(DropinFlagsE2e, CheckConfigTakesAPipelineFileToo) {
  testing::ScratchDir dir;
  const std::string file = dir.file("p.yaml");
  e2e::write_text(file,
                  "pipeline: p\nrings: {raw: {size: 1MiB}}\n"
                  "sources: {s: {type: statsd, listen: [udp://127.0.0.1:0], output: raw}}\n"
                  "exporters: {prom: {type: prometheus, input: raw, listen: 127.0.0.1:0}}\n");
  const auto r = run(dir, {"run", "--check-config", file, "--run-dir", dir.file("run")}, kQuick);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "ringpipe: configuration ok: " + file +
                ": pipeline p, 1 rings, 1 sources, 0 processors, 1 exporters, 0 mapping rules; nothing started\n");
  EXPECT_FALSE(std::filesystem::exists(dir.file("run")));
}

TEST(DropinFlagsE2e, ValidateChecksAMappingFileAlone) {
  testing::ScratchDir dir;
  const std::string mapping = dir.file("m.yml");
  e2e::write_text(mapping, std::string(kGoodMapping));
  const auto ok = run(dir, {"validate", "--mapping", mapping}, kQuick);
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ok.out, mapping + ": ok (mapping file: 1 mapping rules)\n");
  e2e::write_text(mapping, std::string(kBadMapping));
  const auto bad = run(dir, {"validate", "--mapping=" + mapping}, kQuick);
  EXPECT_EQ(bad.code, 1);
  EXPECT_EQ(bad.err, mapping +
                         ":3:9: mappings[0] name: found invalid metric name \"1a\", expected letters, digits, "
                         "'_' and $n/${n} references, not starting with a digit\n");
  EXPECT_EQ(run(dir, {"validate", "--mapping"}, kQuick).code, 2);
}

TEST(DropinFlagsE2e, VersionPrintsOneLineAndExits0) {
  testing::ScratchDir dir;
  const std::regex line(R"(ringpipe \d+\.\d+\.\d+ \(git [^\s()]+\)\n)");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--version"}, {"run", "--version"}, {"--statsd.listen-udp=:1", "--version"}}) {
    const auto r = run(dir, args, kQuick);
    EXPECT_EQ(r.code, 0) << args.front() << r.err;
    EXPECT_TRUE(std::regex_match(r.out, line)) << r.out;
    EXPECT_EQ(r.err, "");
  }
}

// Starts the pipeline with `extra` flags, lets every component come up, stops
// it, and returns what it logged.
std::string logged_by_pipeline(const testing::ScratchDir& dir, const std::vector<std::string>& extra) {
  const auto port = e2e::free_tcp_port();
  const auto web = e2e::free_tcp_port();
  static int n = 0;
  const std::string base = dir.file("logs" + std::to_string(n++));
  e2e::Proc p(isolated_flags(dir, port, web) + extra, base + ".out", base + ".err");
  e2e::TcpSender sender(port);
  EXPECT_TRUE(sender.connect(std::chrono::seconds(20)));  // the statsd component is up
  EXPECT_TRUE(sender.send("a:1|c\n"));
  sender.finish();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(std::chrono::seconds(30)), 0) << p.err();
  return p.err();
}

TEST(DropinFlagsE2e, LogFormatJsonAppliesToTheSupervisorAndItsComponents) {
  testing::ScratchDir dir;
  const std::string err = logged_by_pipeline(dir, {"--log.format=json", "--log.level", "debug"});
  const std::regex json(R"re(\{"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","level":"(debug|info|warn|error)",)re"
                        R"re("component":"[^"]+","pid":\d+,"msg":"([^"\\]|\\.)*"\})re");
  std::set<std::string> components;
  bool debug = false;
  for (const std::string& l : split_lines(err)) {
    EXPECT_TRUE(std::regex_match(l, json)) << l;
    const auto c = l.find("\"component\":\"");
    if (c != std::string::npos) components.insert(l.substr(c + 13, l.find('"', c + 13) - c - 13));
    debug = debug || l.find("\"level\":\"debug\"") != std::string::npos;
  }
  EXPECT_TRUE(components.count("supervisor")) << err;
  EXPECT_TRUE(components.count("statsd")) << err;  // a child: the supervisor passed the flags on
  EXPECT_TRUE(debug) << err;
}

TEST(DropinFlagsE2e, LogFormatLogfmtAndLogLevelApplyToTheSupervisorAndItsComponents) {
  testing::ScratchDir dir;
  const std::string err = logged_by_pipeline(dir, {"--log.format", "logfmt"});
  const std::regex logfmt(R"re(ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(info|warn|error) component=\S+ )re"
                          R"re(pid=\d+ msg="([^"\\]|\\.)*")re");
  bool child = false;
  for (const std::string& l : split_lines(err)) {
    EXPECT_TRUE(std::regex_match(l, logfmt)) << l;
    child = child || l.find("component=statsd ") != std::string::npos;
  }
  EXPECT_TRUE(child) << err;

  // warn: the supervisor's and the components' info lines are gone.
  const std::string quiet = logged_by_pipeline(dir, {"--log.level=warn", "--log.format=logfmt"});
  EXPECT_EQ(quiet.find("level=info"), std::string::npos) << quiet;
}

TEST(DropinFlagsE2e, AnInvalidLogLevelOrFormatIsAUsageErrorNamingTheAcceptedValues) {
  testing::ScratchDir dir;
  const auto level = run(dir, {"--log.level=verbose"}, kQuick);
  EXPECT_EQ(level.code, 2);
  EXPECT_NE(level.err.find("--log.level: found \"verbose\", expected debug, info, warn or error"), std::string::npos)
      << level.err;
  const auto format = run(dir, {"run", "--log.format", "xml"}, kQuick);
  EXPECT_EQ(format.code, 2);
  EXPECT_NE(format.err.find("--log.format: found \"xml\", expected logfmt or json"), std::string::npos) << format.err;
}

TEST(DropinFlagsE2e, AnUnknownOptionIsAUsageErrorListingRunsOptionsAndStatsdExportersFlags) {
  testing::ScratchDir dir;
  for (const std::vector<std::string>& args : {std::vector<std::string>{"run", "--foo"}, {"--foo", "bar"}}) {
    const auto r = run(dir, args, kQuick);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find("unknown option --foo"), std::string::npos) << r.err;
    for (const char* option : {"--config FILE", "--run-dir DIR", "--disable NAME", "--drain-timeout DURATION",
                               "--max-quick-failures N", "--log-level LEVEL", "--check-config", "--version",
                               "--statsd.listen-udp", "--web.listen-address", "docs/migrating-from-statsd_exporter.md"})
      EXPECT_NE(r.err.find(option), std::string::npos) << option << "\n" << r.err;
  }
  // A known flag with a bad value stays a configuration error.
  EXPECT_EQ(run(dir, {"run", "--statsd.cache-type=fifo"}, kQuick).code, 78);
}

// The shell lines of README.md's "Try it" block, for the machine `./build.sh`
// sets up (its tools only), with the ports replaced.
std::vector<std::string> readme_try_it(std::uint16_t port, std::uint16_t web) {
  const std::string readme = e2e::read_text(std::string(RINGPIPE_SOURCE_DIR) + "/README.md");
  const std::size_t at = readme.find("Try it:");
  const std::size_t begin = readme.find('\n', readme.find("```", at)) + 1;
  const std::size_t end = readme.find("```", begin);
  if (at == std::string::npos || end == std::string::npos) return {};
  std::vector<std::string> out;
  for (std::string l : split_lines(readme.substr(begin, end - begin))) {
    for (const auto& [from, to] :
         {std::pair{std::string("9125"), std::to_string(port)}, std::pair{std::string("9102"), std::to_string(web)}}) {
      for (auto i = l.find(from); i != std::string::npos; i = l.find(from)) l.replace(i, from.size(), to);
    }
    out.push_back(l);
  }
  return out;
}

// Runs one line under bash; its exit status and stdout.
std::pair<int, std::string> bash(const std::string& line) {
  const std::string command = "bash -c '" + std::regex_replace(line, std::regex("'"), "'\\''") + "' 2>&1";
  FILE* f = ::popen(command.c_str(), "r");
  std::string out;
  char buf[4096];
  while (const std::size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  const int st = ::pclose(f);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : 128, out};
}

TEST(ReadmeE2e, TryItCommandsWorkWithTheToolsTheSetUpInstalls) {
  testing::ScratchDir dir;
  const auto port = e2e::free_tcp_port();
  const auto web = e2e::free_tcp_port();
  const auto lines = readme_try_it(port, web);
  ASSERT_GE(lines.size(), 2u);
  e2e::Proc p(isolated_flags(dir, port, web), dir.file("p.out"), dir.file("p.err"));
  e2e::TcpSender up(web);
  ASSERT_TRUE(up.connect(std::chrono::seconds(20)));  // the exporter serves
  up.close();
  ASSERT_TRUE(testing::wait_until([&] { return e2e::TcpSender(port).connect(std::chrono::milliseconds(50)); },
                                  std::chrono::seconds(20)));  // the source listens
  // Every line but the scrape once, as written; the scrape until it shows
  // the series (bounded), in case this machine is slower than the README's pause.
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    const auto [code, out] = bash(lines[i]);
    ASSERT_EQ(code, 0) << lines[i] << "\n" << out;
  }
  std::string scraped;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        auto [code, out] = bash(lines.back());
        scraped = out;
        return code == 0 && out == "hits{env=\"dev\"} 1\n";
      },
      std::chrono::seconds(10)))
      << lines.back() << "\n"
      << scraped;
}

}  // namespace
}  // namespace ringpipe::apps
