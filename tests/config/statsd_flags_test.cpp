#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "config_test_util.hpp"
#include "ringpipe/config/pipeline.hpp"
#include "test_support.hpp"

namespace ringpipe::config {
namespace {

using testing::messages;

ConfigResult<PipelineConfig> from_flags(std::vector<std::string_view> args) {
  return pipeline_from_statsd_exporter_flags(args);
}

std::vector<std::string> listen_of(const PipelineConfig& p) {
  std::vector<std::string> out;
  for (const auto& l : p.sources.at(0).listen) out.push_back(l.to_string());
  return out;
}

TEST(StatsdExporterFlags, NoFlagsGiveStatsdExporterDefaults) {
  const auto r = from_flags({});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(listen_of(*r), (std::vector<std::string>{"udp://:9125", "tcp://:9125"}));
  EXPECT_EQ(r->exporters.at(0).prometheus.listen.to_string(), "tcp://:9102");
  EXPECT_EQ(r->exporters.at(0).prometheus.path, "/metrics");
  EXPECT_EQ(r->sources.at(0).tags, StatsdTagFlavors{});
  EXPECT_FALSE(r->processors.at(0).mapping.has_value());
}

TEST(StatsdExporterFlags, EmptyListenAddressDisablesThatListener) {
  const auto r = from_flags({"--statsd.listen-tcp=", "--statsd.listen-udp", "127.0.0.1:8125"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(listen_of(*r), (std::vector<std::string>{"udp://127.0.0.1:8125"}));
}

TEST(StatsdExporterFlags, UnixgramListenerAndSocketMode) {
  const auto r =
      from_flags({"--statsd.listen-udp=", "--statsd.listen-tcp=", "--statsd.listen-unixgram=/run/statsd.sock",
                  "--statsd.unixsocket-mode=660"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(listen_of(*r), (std::vector<std::string>{"unixgram:///run/statsd.sock"}));
  EXPECT_EQ(r->sources.at(0).socket_mode, 0660u);
}

TEST(StatsdExporterFlags, DisablingEveryListenerIsAnError) {
  const auto r = from_flags({"--statsd.listen-udp=", "--statsd.listen-tcp="});
  EXPECT_EQ(messages(r),
            std::vector<std::string>{"command line:1:1: found every listener disabled, expected at least one of "
                                     "--statsd.listen-udp, --statsd.listen-tcp or --statsd.listen-unixgram"});
}

TEST(StatsdExporterFlags, TagFlagsTakeNoPrefixAndExplicitValues) {
  const auto r = from_flags({"--no-statsd.parse-dogstatsd-tags", "--statsd.parse-influxdb-tags=false",
                             "--statsd.parse-librato-tags=true", "--no-statsd.parse-signalfx-tags"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->sources.at(0).tags, (StatsdTagFlavors{false, false, true, false}));
}

TEST(StatsdExporterFlags, WebReadBufferAndCacheFlags) {
  const auto r = from_flags({"--web.listen-address=127.0.0.1:9200", "--web.telemetry-path", "/stats",
                             "--statsd.read-buffer=8388608", "--statsd.cache-size=5000", "--statsd.cache-type=random",
                             "--log.level=debug", "--statsd.event-flush-interval", "100ms", "--web.enable-lifecycle"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->exporters.at(0).prometheus.listen.to_string(), "tcp://127.0.0.1:9200");
  EXPECT_EQ(r->exporters.at(0).prometheus.path, "/stats");
  EXPECT_EQ(r->sources.at(0).read_buffer_bytes, 8u << 20);
  EXPECT_EQ(r->processors.at(0).mapping_cache, (MappingCacheOptions{5000, CacheType::kRandom}));
}

TEST(StatsdExporterFlags, ReportsEveryBadFlagAtItsColumn) {
  const auto r = from_flags({"--statsd.listen-udp=nope", "--bogus", "--statsd.cache-type=fifo",
                             "--web.telemetry-path=metrics", "--statsd.parse-dogstatsd-tags=maybe"});
  EXPECT_EQ(messages(r),
            (std::vector<std::string>{
                "command line:1:1: --statsd.listen-udp: found \"nope\" with no port, expected host:port such as :9125",
                "command line:1:26: found unknown flag --bogus, expected statsd_exporter's --statsd.* and --web.* "
                "flags",
                "command line:1:34: --statsd.cache-type: found \"fifo\", expected lru or random",
                "command line:1:59: --web.telemetry-path: found \"metrics\", expected a path starting with '/'",
                "command line:1:88: found \"--statsd.parse-dogstatsd-tags=maybe\", expected "
                "--statsd.parse-dogstatsd-tags, --no-statsd.parse-dogstatsd-tags or "
                "--statsd.parse-dogstatsd-tags=true|false",
            }));
}

TEST(StatsdExporterFlags, TcpListenerOnTheWebPortIsAnError) {
  const auto r = from_flags({"--statsd.listen-tcp=:9102"});
  EXPECT_EQ(messages(r), std::vector<std::string>{"command line:1:1: --statsd.listen-tcp: found port 9102/tcp also "
                                                  "used by --web.listen-address, expected each address once"});
}

TEST(StatsdExporterFlags, LoadsTheMappingConfigAndReportsItsErrors) {
  ringpipe::testing::ScratchDir dir;
  const std::string good = dir.file("good.yml");
  const std::string bad = dir.file("bad.yml");
  std::ofstream(good) << "mappings:\n- match: a.*\n  name: a_total\n";
  std::ofstream(bad) << "mappings:\n- match: a.*\n  name: 1a\n";
  const std::string good_flag = "--statsd.mapping-config=" + good;
  const auto ok = from_flags({good_flag});
  ASSERT_TRUE(ok) << ok.error().message();
  ASSERT_TRUE(ok->processors.at(0).mapping.has_value());
  EXPECT_EQ(ok->processors.at(0).mapping->mappings.at(0).name, "a_total");
  EXPECT_EQ(ok->processors.at(0).mapping_config, good);

  const auto r = from_flags({"--statsd.mapping-config", bad});
  ASSERT_FALSE(r);
  EXPECT_EQ(messages(r), std::vector<std::string>{bad + ":3:9: mappings[0] name: found invalid metric name \"1a\", "
                                                        "expected letters, digits, '_' and $n/${n} references, not "
                                                        "starting with a digit"});
  const auto missing = from_flags({"--statsd.mapping-config=/nonexistent.yml"});
  EXPECT_EQ(messages(missing),
            std::vector<std::string>{"command line:1:1: --statsd.mapping-config: found \"/nonexistent.yml\" but "
                                     "cannot read mapping file: No such file or directory, expected a readable "
                                     "mapping file"});
}

// Relaying is not implemented: a relay flag that were accepted would lose the
// relayed stream without a word, so it is refused, with what to do instead.
TEST(StatsdExporterFlags, RelayFlagsAreRefusedSayingRelayingIsNotSupported) {
  const auto r = from_flags({"--statsd.relay.address=10.0.0.1:9125", "--statsd.relay.packet-length", "1400"});
  const std::string why =
      "relaying is not supported by ringpipe, expected no --statsd.relay.* flag (send the StatsD stream to the "
      "relay target from its clients, or keep statsd_exporter in front as the relay)";
  EXPECT_EQ(messages(r), (std::vector<std::string>{"command line:1:1: --statsd.relay.address: " + why,
                                                   "command line:1:38: --statsd.relay.packet-length: " + why}));
}

// What `ringpipe run` passes on as a statsd_exporter flag; anything else is
// a usage error there.
TEST(StatsdExporterFlags, KnowsEveryFlagItTakesOrRefusesAndNothingElse) {
  for (const char* f : {"--statsd.listen-udp=:1", "--web.listen-address", "--statsd.relay.address=x",
                        "--no-statsd.parse-dogstatsd-tags", "--check-config", "--no-web.enable-lifecycle",
                        "--log.level=debug", "--web.config.file"})
    EXPECT_TRUE(is_statsd_exporter_flag(f)) << f;
  for (const char* f : {"--foo", "--no-web.listen-address", "--statsd", "statsd.listen-udp", "--", "--config"})
    EXPECT_FALSE(is_statsd_exporter_flag(f)) << f;
}

TEST(StatsdExporterFlags, FlagWithoutValueIsAnError) {
  const auto r = from_flags({"--statsd.listen-udp"});
  EXPECT_EQ(messages(r), std::vector<std::string>{"command line:1:1: found --statsd.listen-udp without a value, "
                                                  "expected --statsd.listen-udp=<value>"});
}

}  // namespace
}  // namespace ringpipe::config
