// HttpClient: URL parsing, TLS context errors, and requests against a canned
// loopback server (deadline, body limit, content type, failure codes).

#include <gtest/gtest.h>

#include "ringpipe/net/http_client.hpp"
#include "test_support.hpp"

namespace ringpipe::net {
namespace {

using namespace std::chrono_literals;

TEST(HttpUrl, ParsesHttpAndHttpsHostPortAndTarget) {
  auto u = parse_http_url("http://127.0.0.1:9090/api/v1/write");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "9090");
  EXPECT_EQ(u->target, "/api/v1/write");
  auto d = parse_http_url("http://example");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->port, "80");
  EXPECT_EQ(d->target, "/");
  EXPECT_FALSE(d->https);
  auto s = parse_http_url("https://metrics.example.com/api/v1/write");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->https);
  EXPECT_EQ(s->host, "metrics.example.com");
  EXPECT_EQ(s->port, "443");
  EXPECT_EQ(s->target, "/api/v1/write");
  auto v6 = parse_http_url("https://[::1]:8443/w");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, "8443");
  EXPECT_FALSE(parse_http_url("ftp://x/"));
  EXPECT_FALSE(parse_http_url("http://x:port/"));
}

TEST(TlsClientContext, ReportsUnreadableFilesAndAcceptsDefaults) {
  EXPECT_TRUE(make_tls_client_context({}));
  TlsClientOptions insecure;
  insecure.insecure_skip_verify = true;
  EXPECT_TRUE(make_tls_client_context(insecure));
  TlsClientOptions missing;
  missing.ca_file = "/nonexistent/ca.pem";
  auto r = make_tls_client_context(missing);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("/nonexistent/ca.pem"), std::string::npos) << r.error().message();
  TlsClientOptions key_only;
  key_only.key_file = "/nonexistent/key.pem";
  EXPECT_FALSE(make_tls_client_context(key_only));
}

TEST(HttpClient, HttpsWithoutTlsContextFailsCleanly) {
  HttpClient c(HttpUrl{"127.0.0.1", "1", "/", true});
  auto r = c.request("GET", "/", {}, "", std::chrono::milliseconds(200));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("TLS context"), std::string::npos) << r.error().message();
}

HttpClient local(std::uint16_t port) { return HttpClient(HttpUrl{"127.0.0.1", std::to_string(port), "/"}); }

TEST(HttpClient, ReturnsStatusContentTypeAndBodyAndSendsHeaders) {
  ringpipe::testing::CannedHttpServer server(200, "text/plain; version=0.0.4", "up 1\n");
  HttpClient c = local(server.port());
  auto r = c.request("GET", "/metrics", {{"Accept", "text/plain"}}, "", 2s);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "text/plain; version=0.0.4");
  EXPECT_EQ(r->body, "up 1\n");
  const std::string req = server.last_request();
  EXPECT_NE(req.find("GET /metrics HTTP/1.1"), std::string::npos) << req;
  EXPECT_NE(req.find("Accept: text/plain"), std::string::npos) << req;
}

TEST(HttpClient, BodyOverTheLimitFailsWithMessageSize) {
  ringpipe::testing::CannedHttpServer server(200, "text/plain", std::string(4096, 'x'));
  HttpClient c = local(server.port());
  auto r = c.request("GET", "/", {}, "", 2s, 1024);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, std::errc::message_size) << r.error().message();
  auto ok = c.request("GET", "/", {}, "", 2s, 4096);
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->body.size(), 4096u);
}

TEST(HttpClient, SlowServerFailsWithTimedOutWithinTheDeadline) {
  ringpipe::testing::CannedHttpServer server(200, "text/plain", "late", 3s);
  HttpClient c = local(server.port());
  const auto start = std::chrono::steady_clock::now();
  auto r = c.request("GET", "/", {}, "", 300ms);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, std::errc::timed_out) << r.error().message();
  EXPECT_LT(took, 2s);
}

TEST(HttpClient, NothingListeningFailsWithConnectionRefused) {
  HttpClient c = local(ringpipe::testing::free_tcp_port());
  auto r = c.request("GET", "/", {}, "", 1s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, std::errc::connection_refused) << r.error().message();
  // The cause is said once: "http GET 127.0.0.1:<port>/: connect: Connection refused".
  const std::string m = r.error().message();
  EXPECT_NE(m.find(": connect: Connection refused"), std::string::npos) << m;
  EXPECT_EQ(m.find("Connection refused: Connection refused"), std::string::npos) << m;
}

}  // namespace
}  // namespace ringpipe::net
