// The exporter-toolkit web config file (--web.config.file): what maps onto
// the Prometheus exporter's TLS and basic auth, and what is refused by name.

#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "config_test_util.hpp"
#include "ringpipe/config/pipeline.hpp"
#include "ringpipe/config/web_config.hpp"
#include "test_support.hpp"

namespace ringpipe::config {
namespace {

using testing::has_message;
using testing::messages;

// bcrypt of "s3cret" at cost 4 (libxcrypt); the parser checks the form only.
constexpr std::string_view kHash = "$2b$04$xtGyj5JuTSRliWDIoXagfuXNEdObKFl54s0FdAOUj6hJohMK2PBLa";

// A scratch folder holding cert.pem and key.pem (the parser checks only that
// they can be read; the exporter's TLS tests use real ones).
struct Files {
  ringpipe::testing::ScratchDir dir;
  Files() {
    std::ofstream(dir.file("cert.pem")) << "cert\n";
    std::ofstream(dir.file("key.pem")) << "key\n";
    std::ofstream(dir.file("ca.pem")) << "ca\n";
  }
  [[nodiscard]] ConfigResult<WebConfig> parse(const std::string& text) const {
    return parse_web_config(text, "web.yml", dir.path().string());
  }
};

TEST(WebConfigFile, MapsTlsAndBcryptUsersOntoTheExporter) {
  Files f;
  const auto r = f.parse(
      "tls_server_config:\n"
      "  cert_file: cert.pem\n"
      "  key_file: " +
      f.dir.file("key.pem") +
      "\n"
      "  client_auth_type: RequireAndVerifyClientCert\n"
      "  client_ca_file: ca.pem\n"
      "  min_version: TLS13\n"
      "  max_version: TLS13\n"
      "http_server_config:\n"
      "  http2: false\n"
      "basic_auth_users:\n"
      "  scraper: " +
      std::string(kHash) + "\n  'other': '$2b$04$abcdefghijklmnopqrstuu5Tk0ZP1sR7WJ0u9S7vY2y8b2sNQ7x0K'\n");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_TRUE(r->tls);
  EXPECT_EQ(r->tls->cert_file, f.dir.file("cert.pem")) << "relative to the web config file's folder";
  EXPECT_EQ(r->tls->key_file, f.dir.file("key.pem"));
  EXPECT_EQ(r->tls->ca_file, f.dir.file("ca.pem"));
  EXPECT_EQ(r->tls->min_version, "TLS13");
  EXPECT_NE(r->tls->contents_digest, 0U) << "a renewed certificate restarts the exporter on reload";
  ASSERT_EQ(r->basic_auth_users.size(), 2U);
  EXPECT_EQ(r->basic_auth_users[0], (BasicAuthUser{"scraper", std::string(kHash), true}));
  EXPECT_EQ(r->basic_auth_users[1].username, "other");
  EXPECT_TRUE(r->basic_auth_users[1].bcrypt);
}

TEST(WebConfigFile, DefaultsToTls12AndNoClientCertificates) {
  Files f;
  const auto r = f.parse("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_TRUE(r->tls);
  EXPECT_EQ(r->tls->min_version, "TLS12");
  EXPECT_EQ(r->tls->ca_file, "");
  EXPECT_TRUE(r->basic_auth_users.empty());
}

TEST(WebConfigFile, BasicAuthAloneOrAnEmptyFileServesPlainHttp) {
  Files f;
  const auto auth = f.parse("basic_auth_users:\n  scraper: " + std::string(kHash) + "\n");
  ASSERT_TRUE(auth) << auth.error().message();
  EXPECT_FALSE(auth->tls);
  EXPECT_EQ(auth->basic_auth_users.size(), 1U);
  const auto empty = f.parse("");
  ASSERT_TRUE(empty) << empty.error().message();
  EXPECT_FALSE(empty->tls);
  const auto no_files = f.parse("tls_server_config: {}\n");
  ASSERT_TRUE(no_files) << no_files.error().message();
  EXPECT_FALSE(no_files->tls) << "as the exporter-toolkit: no certificate, no TLS";
}

TEST(WebConfigFile, RefusesEachKeyTheServerCannotHonourByName) {
  Files f;
  const std::string tls = "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {tls + "  curve_preferences: [X25519]\n",
       "web.yml:4:22: web config tls_server_config curve_preferences: found a list, not supported by ringpipe"},
      {tls + "  client_auth_type: RequestClientCert\n",
       "tls_server_config client_auth_type: found \"RequestClientCert\", not supported by ringpipe, expected "
       "NoClientCert or RequireAndVerifyClientCert"},
      {tls + "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n",
       "client_auth_type: found \"VerifyClientCertIfGiven\", not supported by ringpipe"},
      {tls + "  client_auth_type: RequireAndVerifyClientCert\n", "RequireAndVerifyClientCert without client_ca_file"},
      {tls + "  client_ca_file: ca.pem\n", "client_ca_file with client_auth_type NoClientCert"},
      {tls + "  min_version: SSL30\n", "min_version: found \"SSL30\", expected TLS10, TLS11, TLS12 or TLS13"},
      {"http_server_config:\n  http2: true\n", "http_server_config http2: found true, not supported by ringpipe"},
      {"http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
       "http_server_config headers: found a map, not supported by ringpipe"},
      {"tls_server_config:\n  cert: PEM\n  key: PEM\n", "tls_server_config cert: found \"PEM\", not supported"},
      {"tls_server_config:\n  cert_file: cert.pem\n", "found no key_file, expected cert_file and key_file"},
      {"tls_config:\n  cert_file: cert.pem\n", "web config: found unknown key \"tls_config\""},
  };
  for (const auto& [text, expected] : cases) {
    const auto r = f.parse(text);
    EXPECT_FALSE(r) << text;
    EXPECT_TRUE(has_message(r, expected)) << text << "\ngot: " << ::testing::PrintToString(messages(r));
  }
}

// max_version, cipher_suites and prefer_server_cipher_suites as the
// exporter-toolkit reads them: Go's suite names (tls.CipherSuites()) become
// OpenSSL's, in the file's order; TLS 1.3's are accepted and left out (not
// configurable, as in Go); the server's order wins unless told otherwise.
TEST(WebConfigFile, MapsMaxVersionAndGoCipherSuitesOntoOpenSsl) {
  Files f;
  const std::string tls = "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n";
  const auto r = f.parse(tls +
                         "  max_version: TLS12\n"
                         "  cipher_suites:\n"
                         "    - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n"
                         "    - TLS_AES_128_GCM_SHA256\n"
                         "    - TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256\n"
                         "    - TLS_RSA_WITH_AES_128_CBC_SHA\n"
                         "    - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n"
                         "  prefer_server_cipher_suites: false\n");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_TRUE(r->tls);
  EXPECT_EQ(r->tls->min_version, "TLS12");
  EXPECT_EQ(r->tls->max_version, "TLS12");
  EXPECT_EQ(r->tls->cipher_suites,
            (std::vector<std::string>{"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "AES128-SHA"}));
  EXPECT_FALSE(r->tls->prefer_server_cipher_suites);

  const auto d = f.parse(tls);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->tls->max_version, "") << "up to TLS 1.3, the exporter-toolkit's default";
  EXPECT_TRUE(d->tls->cipher_suites.empty()) << "OpenSSL's default list";
  EXPECT_TRUE(d->tls->prefer_server_cipher_suites) << "the exporter-toolkit's default";

  const auto only13 = f.parse(tls + "  min_version: TLS13\n  cipher_suites: [TLS_AES_256_GCM_SHA384]\n");
  ASSERT_TRUE(only13) << only13.error().message();
  EXPECT_TRUE(only13->tls->cipher_suites.empty());

  const std::vector<std::pair<std::string, std::string>> bad = {
      {tls + "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
       "web.yml:4:19: web config tls_server_config cipher_suites: found \"TLS_RSA_WITH_RC4_128_SHA\", expected a name "
       "from Go's tls.CipherSuites()"},
      {tls + "  cipher_suites: [ECDHE-RSA-AES128-GCM-SHA256]\n", "found \"ECDHE-RSA-AES128-GCM-SHA256\", expected"},
      {tls + "  cipher_suites: TLS_RSA_WITH_AES_128_CBC_SHA\n",
       "cipher_suites: found \"TLS_RSA_WITH_AES_128_CBC_SHA\", "
       "expected a list of cipher suite names"},
      {tls + "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", "found only TLS 1.3 suites, which are not configurable"},
      {tls + "  min_version: TLS13\n  max_version: TLS12\n",
       "max_version: found \"TLS12\", expected at least min_version (TLS13)"},
      {tls + "  max_version: TLS14\n", "max_version: found \"TLS14\", expected TLS10, TLS11, TLS12 or TLS13"},
      {tls + "  prefer_server_cipher_suites: maybe\n", "prefer_server_cipher_suites"},
  };
  for (const auto& [text, expected] : bad) {
    const auto e = f.parse(text);
    EXPECT_FALSE(e) << text;
    EXPECT_TRUE(has_message(e, expected)) << text << "\ngot: " << ::testing::PrintToString(messages(e));
  }
}

TEST(WebConfigFile, RefusesAPasswordThatIsNotABcryptHash) {
  Files f;
  for (const std::string& bad :
       std::vector<std::string>{"s3cret", "$1$abc$def", "$2y$10$tooshort", "$2y$03$" + std::string(53, 'a'),
                                "$2x$10$" + std::string(53, 'a'), "$2y$10$" + std::string(52, 'a') + "!"}) {
    const auto r = f.parse("basic_auth_users:\n  scraper: '" + bad + "'\n");
    EXPECT_FALSE(r) << bad;
    EXPECT_TRUE(
        has_message(r, "web.yml:2:12: web config basic_auth_users scraper: found a password that is not a bcrypt hash"))
        << bad << "\ngot: " << ::testing::PrintToString(messages(r));
  }
  EXPECT_TRUE(is_bcrypt_hash(kHash));
  EXPECT_TRUE(is_bcrypt_hash("$2a$31$" + std::string(53, '/')));
}

TEST(WebConfigFile, RefusesACertificateFileThatCannotBeRead) {
  Files f;
  const auto r = f.parse("tls_server_config:\n  cert_file: missing.pem\n  key_file: key.pem\n");
  ASSERT_FALSE(r);
  EXPECT_EQ(messages(r), std::vector<std::string>{"web.yml:2:14: web config tls_server_config cert_file: found \"" +
                                                  f.dir.file("missing.pem") +
                                                  "\", which cannot be read (No such file or directory), expected a "
                                                  "readable PEM file"});
}

TEST(WebConfigFile, FlagReadsTheFileIntoTheBuiltInPipelinesExporter) {
  Files f;
  std::ofstream(f.dir.file("web.yml")) << "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"
                                          "basic_auth_users:\n  scraper: "
                                       << kHash << "\n";
  const std::string flag = "--web.config.file=" + f.dir.file("web.yml");
  const std::vector<std::string_view> args{flag};
  const auto p = pipeline_from_statsd_exporter_flags(args);
  ASSERT_TRUE(p) << p.error().message();
  const PrometheusExporterConfig& web = p->exporters.front().prometheus;
  ASSERT_TRUE(web.tls);
  EXPECT_EQ(web.tls->cert_file, f.dir.file("cert.pem"));
  ASSERT_EQ(web.basic_auth_users.size(), 1U);
  EXPECT_TRUE(web.basic_auth_users[0].bcrypt);

  const std::string missing = "--web.config.file=" + f.dir.file("nope.yml");
  const std::vector<std::string_view> bad{missing};
  const auto r = pipeline_from_statsd_exporter_flags(bad);
  EXPECT_TRUE(has_message(r, "command line:1:1: --web.config.file: found \"" + f.dir.file("nope.yml") +
                                 "\" but cannot read web config file: No such file or directory"))
      << ::testing::PrintToString(messages(r));
}

}  // namespace
}  // namespace ringpipe::config
