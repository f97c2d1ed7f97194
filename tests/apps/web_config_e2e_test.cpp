// `ringpipe run --web.config.file=FILE`: statsd_exporter's exporter-toolkit
// web config (TLS and bcrypt basic auth) served by the real binary over
// HTTPS on 127.0.0.1; what cannot be honoured is refused at start.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <crypt.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "e2e_util.hpp"
#include "prometheus_server.hpp"

namespace ringpipe::apps {
namespace {

using namespace std::chrono_literals;

// A bcrypt hash of `password` made by libxcrypt ($2b$, cost 4: quick to check).
std::string bcrypt_hash(const std::string& password) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (::crypt_gensalt_rn("$2b$", 4, nullptr, 0, setting, sizeof setting) == nullptr) return "";
  auto data = std::make_unique<crypt_data>();
  const char* out = ::crypt_rn(password.c_str(), setting, data.get(), sizeof(crypt_data));
  return out == nullptr || out[0] == '*' ? "" : std::string(out);
}

using e2e::send_udp;

std::vector<std::string> run_flags(const testing::ScratchDir& dir, const std::string& web_config, std::uint16_t port,
                                   std::uint16_t web) {
  return {"run",
          "--web.config.file=" + web_config,
          "--statsd.listen-udp=127.0.0.1:" + std::to_string(port),
          "--statsd.listen-tcp=",
          "--web.listen-address=127.0.0.1:" + std::to_string(web),
          "--run-dir",
          dir.file("run")};
}

TEST(WebConfigE2e, ServesMetricsOverHttpsToTheBcryptUserOnly) {
  ASSERT_EQ(::access("/usr/bin/openssl", X_OK), 0) << "needs /usr/bin/openssl (build.sh installs it)";
  testing::ScratchDir dir;
  exporters::testing::TestPki pki;
  ASSERT_TRUE(exporters::testing::make_test_pki(dir.path().string(), &pki));
  const std::string hash = bcrypt_hash("s3cret");
  ASSERT_EQ(hash.rfind("$2b$04$", 0), 0U) << hash;
  const std::string web_yml = dir.file("web.yml");
  e2e::write_text(web_yml, "tls_server_config:\n  cert_file: " + pki.cert + "\n  key_file: " + pki.key +
                               "\n  min_version: TLS12\n  max_version: TLS12\n  cipher_suites:\n"
                               "    - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n"
                               "    - TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256\n"
                               "basic_auth_users:\n  scraper: " +
                               hash + "\n");
  const auto port = e2e::free_tcp_port();
  const auto web = e2e::free_tcp_port();
  e2e::Proc p(run_flags(dir, web_yml, port, web), dir.file("out"), dir.file("err"));

  // Up once an unauthenticated request gets its 401 over TLS.
  ASSERT_TRUE(testing::wait_until(
      [&] { return exporters::testing::https_get(web, "/metrics", pki.ca_cert, "", 1s).first == 401; }, 30s))
      << p.err();
  ASSERT_TRUE(send_udp(port, "web_config_hits:3|c\n"));
  const std::string right = "Basic c2NyYXBlcjpzM2NyZXQ=";  // scraper:s3cret
  std::string body;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto [code, text] = exporters::testing::https_get(web, "/metrics", pki.ca_cert, right, 2s);
        body = text;
        return code == 200 && e2e::exposition_sum(text, "web_config_hits") == 3.0;
      },
      20s))
      << body << p.err();

  EXPECT_EQ(exporters::testing::https_get(web, "/metrics", pki.ca_cert, "", 2s).first, 401) << "no auth";
  EXPECT_EQ(exporters::testing::https_get(web, "/metrics", pki.ca_cert, "Basic c2NyYXBlcjp3cm9uZw==", 2s).first, 401);
  EXPECT_EQ(exporters::testing::https_get(web, "/metrics", pki.ca_cert, "Basic b3RoZXI6czNjcmV0", 2s).first, 401);
  EXPECT_EQ(exporters::testing::https_get(web, "/metrics", pki.ca_cert, right, 2s).first, 200) << "cached";
  EXPECT_NE(exporters::testing::http_get(web, "/metrics", right, 2s).first, 200) << "plain HTTP is not served";
  // max_version and cipher_suites, in the web config's order (the server's
  // preference by default), over real handshakes.
  const std::string out = dir.file("s_client.out");
  EXPECT_EQ(exporters::testing::tls_handshake(web, "-tls1_3", out), "") << "max_version TLS12";
  EXPECT_EQ(exporters::testing::tls_handshake(web, "", out), "TLSv1.2, Cipher is ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(
      exporters::testing::tls_handshake(web, "-cipher ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256", out),
      "TLSv1.2, Cipher is ECDHE-RSA-AES128-GCM-SHA256")
      << "the server's order";
  EXPECT_EQ(exporters::testing::tls_handshake(web, "-cipher ECDHE-RSA-AES256-GCM-SHA384", out), "") << "not listed";
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(20s), std::optional<int>(0)) << p.err();
}

TEST(WebConfigE2e, AKeyItCannotHonourIsAConfigurationErrorNamingItAndStartsNothing) {
  testing::ScratchDir dir;
  exporters::testing::TestPki pki;
  ASSERT_TRUE(exporters::testing::make_test_pki(dir.path().string(), &pki));
  const std::string web_yml = dir.file("web.yml");
  e2e::write_text(web_yml, "tls_server_config:\n  cert_file: " + pki.cert + "\n  key_file: " + pki.key +
                               "\n  curve_preferences: [X25519]\n");
  const auto r = e2e::run(dir, run_flags(dir, web_yml, e2e::free_tcp_port(), e2e::free_tcp_port()), 10s);
  EXPECT_EQ(r.code, 78) << r.err;
  EXPECT_NE(r.err.find(web_yml + ":4:22: web config tls_server_config curve_preferences: found a list, not "
                                 "supported by ringpipe"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("run")));

  e2e::write_text(web_yml, "basic_auth_users:\n  scraper: s3cret\n");
  const auto plain = e2e::run(dir, run_flags(dir, web_yml, e2e::free_tcp_port(), e2e::free_tcp_port()), 10s);
  EXPECT_EQ(plain.code, 78) << plain.err;
  EXPECT_NE(plain.err.find("basic_auth_users scraper: found a password that is not a bcrypt hash"), std::string::npos)
      << plain.err;
}

}  // namespace
}  // namespace ringpipe::apps
