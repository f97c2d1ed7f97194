// The pull endpoint over IPv6 on loopback: [::1] plain, with basic auth
// (plain-text and bcrypt users) and over TLS; an empty host takes IPv4 and
// IPv6 on one port, 0.0.0.0 IPv4 only; split_listen's forms and errors.
// Tests that need [::1] skip where the host has no IPv6 loopback.

#include <crypt.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "http_endpoint.hpp"
#include "loopback.hpp"
#include "prometheus_server.hpp"
#include "record_builder.hpp"
#include "ringpipe/exporters/prometheus_exporter.hpp"
#include "ringpipe/ring/ring.hpp"
#include "test_support.hpp"

namespace ringpipe::exporters {
namespace {

using namespace std::chrono_literals;
using metric::MetricType;
using testing::origin;
using testing::RecordBuilder;

#define SKIP_WITHOUT_IPV6_LOOPBACK()                                         \
  if (!ringpipe::testing::ipv6_loopback_available()) {                       \
    GTEST_SKIP() << "this host has no IPv6 loopback: [::1] cannot be bound"; \
  }

ring::Ring make_ring(const std::string& path) { return testing::make_block_ring(path, 2, 1 << 20); }

// A ring with one complete snapshot holding the gauge v6_value 42.
void write_snapshot(ring::Ring& ring) {
  auto producer = ring::Producer::attach(ring);
  ASSERT_TRUE(producer);
  RecordBuilder b(origin(4));
  b.begin(1).series(MetricType::kGauge, "v6_value", {}, {42}).end(1);
  ASSERT_TRUE(b.ok());
  const auto rec = b.take();
  ASSERT_EQ(producer->write(metric::kMetricBatchRecord, rec, 2s), ring::WriteStatus::kOk);
}

std::unique_ptr<PrometheusExporter> start(PrometheusExporterOptions o) {
  auto exp = PrometheusExporter::create(o);
  EXPECT_TRUE(exp) << exp.error().message();
  if (!exp) return nullptr;
  EXPECT_TRUE((*exp)->start());
  EXPECT_TRUE(ringpipe::testing::wait_until([&] { return (*exp)->ready(); }, 10s));
  return std::move(*exp);
}

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(HttpEndpointIpv6, SplitListenReadsBracketedAndEmptyHostsAndSaysWhatIsWrong) {
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(split_listen("[::1]:9102").value(), (P{"::1", "9102"}));
  EXPECT_EQ(split_listen("[::]:9102").value(), (P{"::", "9102"}));
  EXPECT_EQ(split_listen(":9102").value(), (P{"", "9102"}));
  EXPECT_EQ(split_listen("0.0.0.0:9102").value(), (P{"0.0.0.0", "9102"}));
  EXPECT_EQ(split_listen("localhost:0").value(), (P{"localhost", "0"}));
  const auto error = [](const std::string& listen) {
    auto r = split_listen(listen);
    return r ? std::string("accepted") : r.error().context;
  };
  EXPECT_EQ(error("::1:9102"), "listen: ::1:9102: an IPv6 address without brackets, expected [address]:port");
  EXPECT_EQ(error("[::1:9102"), "listen: [::1:9102: an IPv6 address without ']'");
  EXPECT_EQ(error("[::1]9102"), "listen: [::1]9102: expected [address]:port");
  EXPECT_EQ(error("[::1]:99999"), "listen: [::1]:99999: bad port");
  EXPECT_EQ(error("9102"), "listen: 9102: expected host:port");
}

TEST(HttpEndpointIpv6, ServesMetricsHealthAndReadyOnIpv6Loopback) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  ringpipe::testing::ScratchDir dir;
  ring::Ring ring = make_ring(dir.file("metrics"));
  write_snapshot(ring);
  PrometheusExporterOptions o;
  o.input = dir.file("metrics");
  o.listen = "[::1]:0";
  auto exp = start(o);
  ASSERT_TRUE(exp);
  const std::uint16_t port = exp->port();
  ASSERT_NE(port, 0);
  EXPECT_EQ(testing::http_get_at("::1", port, "/-/healthy").first, 200);
  EXPECT_EQ(testing::http_get_at("::1", port, "/-/ready").first, 200);
  const auto [code, page] = testing::http_get_at("::1", port, "/metrics");
  EXPECT_EQ(code, 200) << page;
  EXPECT_EQ(testing::sample_value(page, "v6_value"), 42.0) << page;
  EXPECT_EQ(testing::http_get(port, "/metrics", "", 1s).first, 0) << "[::1] is not 127.0.0.1";
}

TEST(HttpEndpointIpv6, AnEmptyHostServesIpv4AndIpv6OnOnePortAndZeroAddressOnlyIpv4) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  ringpipe::testing::ScratchDir dir;
  ring::Ring ring = make_ring(dir.file("metrics"));
  write_snapshot(ring);
  PrometheusExporterOptions o;
  o.input = dir.file("metrics");
  o.listen = ":0";
  {
    auto exp = start(o);
    ASSERT_TRUE(exp);
    const auto v4 = testing::http_get_at("127.0.0.1", exp->port(), "/metrics");
    const auto v6 = testing::http_get_at("::1", exp->port(), "/metrics");
    ASSERT_EQ(v4.first, 200) << v4.second;
    ASSERT_EQ(v6.first, 200) << v6.second;
    EXPECT_EQ(testing::sample_value(v4.second, "v6_value"), 42.0);
    EXPECT_EQ(testing::sample_value(v6.second, "v6_value"), 42.0);
  }
  o.listen = "0.0.0.0:0";
  o.reader_name = "prometheus-v4";
  auto exp = start(o);
  ASSERT_TRUE(exp);
  EXPECT_EQ(testing::http_get_at("127.0.0.1", exp->port(), "/-/healthy").first, 200);
  EXPECT_EQ(testing::http_get_at("::1", exp->port(), "/-/healthy", "", 1s).first, 0) << "0.0.0.0 is IPv4 only";
}

TEST(HttpEndpointIpv6, ATakenIpv6PortIsRefusedAsAddressInUse) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  ringpipe::testing::ScratchDir dir;
  ring::Ring ring = make_ring(dir.file("metrics"));
  PrometheusExporterOptions o;
  o.input = dir.file("metrics");
  o.listen = "[::1]:0";
  auto first = start(o);
  ASSERT_TRUE(first);
  o.listen = "[::1]:" + std::to_string(first->port());
  o.reader_name = "second";
  auto second = PrometheusExporter::create(o);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, std::errc::address_in_use);
  EXPECT_EQ(second.error().message(),
            "prometheus exporter: listen [::1]:" + std::to_string(first->port()) + ": bind: Address already in use");
}

// A bcrypt hash of `password` (cost 4, libxcrypt); "" on failure.
std::string bcrypt(const std::string& password) {
  char setting[64];
  if (::crypt_gensalt_rn("$2b$", 4, nullptr, 0, setting, sizeof setting) == nullptr) return "";
  auto data = std::make_unique<crypt_data>();
  const char* out = ::crypt_rn(password.c_str(), setting, data.get(), sizeof(crypt_data));
  return out == nullptr || out[0] == '*' ? "" : out;
}

TEST(HttpEndpointIpv6, BasicAuthWithPlainAndBcryptUsersOnIpv6Loopback) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  ringpipe::testing::ScratchDir dir;
  ring::Ring ring = make_ring(dir.file("metrics"));
  write_snapshot(ring);
  const std::string hash = bcrypt("hashed");
  ASSERT_FALSE(hash.empty());
  PrometheusExporterOptions o;
  o.input = dir.file("metrics");
  o.listen = "[::1]:0";
  o.basic_auth_users = {{"scraper", "s3cret", false}, {"prom", hash, true}};
  auto exp = start(o);
  ASSERT_TRUE(exp);
  const std::uint16_t port = exp->port();
  EXPECT_EQ(testing::http_get_at("::1", port, "/metrics").first, 401);
  EXPECT_EQ(testing::http_get_at("::1", port, "/metrics", "Basic c2NyYXBlcjp3cm9uZw==").first, 401);  // scraper:wrong
  EXPECT_EQ(testing::http_get_at("::1", port, "/metrics", "Basic c2NyYXBlcjpzM2NyZXQ=").first, 200);  // scraper:s3cret
  EXPECT_EQ(testing::http_get_at("::1", port, "/metrics", "Basic cHJvbTpoYXNoZWQ=").first, 200);      // prom:hashed
  EXPECT_EQ(testing::http_get_at("::1", port, "/metrics", "Basic cHJvbTp3cm9uZw==").first, 401);      // prom:wrong
  EXPECT_EQ(testing::http_get_at("::1", port, "/-/healthy").first, 200) << "probes need no credentials";
}

TEST(HttpEndpointIpv6, ServesHttpsOnIpv6LoopbackAndRefusesClearText) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  ASSERT_TRUE(::access("/usr/bin/openssl", X_OK) == 0 && ::access("/usr/bin/curl", X_OK) == 0)
      << "needs /usr/bin/openssl and /usr/bin/curl (build.sh installs them)";
  ringpipe::testing::ScratchDir dir;
  std::string cert;
  std::string key;
  ASSERT_TRUE(testing::make_self_signed_cert(dir.path().string(), "IP:::1", &cert, &key));
  ring::Ring ring = make_ring(dir.file("metrics"));
  write_snapshot(ring);
  PrometheusExporterOptions o;
  o.input = dir.file("metrics");
  o.listen = "[::1]:0";
  o.tls.emplace();
  o.tls->cert_file = cert;
  o.tls->key_file = key;
  o.tls->min_version = "TLS13";
  auto exp = start(o);
  ASSERT_TRUE(exp);
  const std::string out = dir.file("curl.out");
  const std::string url = "'https://[::1]:" + std::to_string(exp->port()) + "/metrics'";
  const std::string curl = "/usr/bin/curl -g -sS --max-time 5 --cacert " + cert + " -o " + out + " -w '%{http_code}' ";
  ASSERT_EQ(std::system((curl + url + " > " + out + ".code").c_str()), 0) << file_text(out);
  EXPECT_EQ(file_text(out + ".code"), "200");
  EXPECT_EQ(testing::sample_value(file_text(out), "v6_value"), 42.0) << file_text(out);
  EXPECT_NE(testing::http_get_at("::1", exp->port(), "/metrics", "", 1s).first, 200) << "plain HTTP is not served";
  // min_version TLS13: a client that offers at most TLS 1.2 is refused.
  const std::string tls12 = curl + "--tls-max 1.2 " + url + " > " + out + ".code12";
  EXPECT_NE(std::system(tls12.c_str()), 0) << "a TLS 1.2 handshake was accepted";
  EXPECT_EQ(file_text(out + ".code12"), "000");
}

}  // namespace
}  // namespace ringpipe::exporters
