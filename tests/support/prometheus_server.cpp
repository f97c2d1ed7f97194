#include "prometheus_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "ringpipe/net/http_client.hpp"

namespace ringpipe::exporters::testing {

using namespace std::chrono_literals;
using net::HttpClient;
using net::HttpHeaders;
using net::HttpUrl;
using net::make_tls_client_context;
using net::TlsClientOptions;

std::pair<int, std::string> http_get(std::uint16_t port, const std::string& target, const std::string& authorization,
                                     std::chrono::milliseconds timeout) {
  return http_get_at("127.0.0.1", port, target, authorization, timeout);
}

std::pair<int, std::string> http_get_at(const std::string& host, std::uint16_t port, const std::string& target,
                                        const std::string& authorization, std::chrono::milliseconds timeout) {
  HttpClient c(HttpUrl{host, std::to_string(port), "/"});
  HttpHeaders h;
  if (!authorization.empty()) h.emplace_back("Authorization", authorization);
  auto r = c.request("GET", target, h, "", timeout);
  if (!r) return {0, r.error().message()};
  return {r->status, r->body};
}

std::optional<std::string> RawHttpResponse::header(std::string_view name) const {
  auto lower = [](std::string_view v) {
    std::string out(v);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  const std::string want = lower(name);
  for (const auto& [n, v] : headers) {
    if (lower(n) == want) return v;
  }
  return std::nullopt;
}

RawHttpResponse raw_http_get(std::uint16_t port, const std::string& target,
                             const std::vector<std::pair<std::string, std::string>>& headers,
                             std::chrono::milliseconds timeout) {
  RawHttpResponse out;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    out.error = "socket failed";
    return out;
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const sockaddr_in addr = ringpipe::testing::loopback_address(port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    out.error = "connect failed";
    return out;
  }
  std::string request = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& [n, v] : headers) request += n + ": " + v + "\r\n";
  request += "\r\n";
  for (std::size_t at = 0; at < request.size();) {
    const ssize_t n = ::send(fd, request.data() + at, request.size() - at, MSG_NOSIGNAL);
    if (n <= 0) {
      ::close(fd);
      out.error = "send failed";
      return out;
    }
    at += static_cast<std::size_t>(n);
  }
  std::string raw;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0 || std::chrono::steady_clock::now() > deadline) {
      ::close(fd);
      out.error = "no end of answer before the timeout (" + std::to_string(raw.size()) + " bytes read)";
      return out;
    }
    raw.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const std::size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos || raw.compare(0, 9, "HTTP/1.1 ") != 0) {
    out.error = "malformed answer: " + raw.substr(0, 200);
    return out;
  }
  std::size_t line = raw.find("\r\n");
  out.status = std::atoi(raw.c_str() + 9);
  while (line < end) {
    const std::size_t next = raw.find("\r\n", line + 2);
    const std::string h = raw.substr(line + 2, next - line - 2);
    const std::size_t colon = h.find(':');
    if (colon != std::string::npos) {
      const std::size_t value = h.find_first_not_of(' ', colon + 1);
      out.headers.emplace_back(h.substr(0, colon), value == std::string::npos ? "" : h.substr(value));
    }
    line = next;
  }
  out.body = raw.substr(end + 4);
  return out;
}

std::optional<double> sample_value(const std::string& page, const std::string& series) {
  const std::string line = series + " ";
  for (std::size_t at = 0; at < page.size();) {
    if (page.compare(at, line.size(), line) == 0) {
      return std::strtod(page.c_str() + at + line.size(), nullptr);
    }
    const std::size_t next = page.find('\n', at);
    if (next == std::string::npos) break;
    at = next + 1;
  }
  return std::nullopt;
}

std::pair<int, std::string> https_get(std::uint16_t port, const std::string& target, const std::string& ca_file,
                                      const std::string& authorization, std::chrono::milliseconds timeout) {
  TlsClientOptions o;
  o.ca_file = ca_file;
  auto ctx = make_tls_client_context(o);
  if (!ctx) return {0, ctx.error().message()};
  HttpUrl url{"127.0.0.1", std::to_string(port), "/", true};
  HttpClient c(url, *ctx);
  HttpHeaders h;
  if (!authorization.empty()) h.emplace_back("Authorization", authorization);
  auto r = c.request("GET", target, h, "", timeout);
  if (!r) return {0, r.error().message()};
  return {r->status, r->body};
}

bool make_test_pki(const std::string& dir, TestPki* out) {
  out->ca_cert = dir + "/ca.pem";
  out->ca_key = dir + "/ca.key";
  out->cert = dir + "/server.pem";
  out->key = dir + "/server.key";
  const std::string ext = dir + "/server.ext";
  std::ofstream(ext) << "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n";
  const std::string ssl = "/usr/bin/openssl";
  const std::string quiet = " > " + dir + "/openssl.log 2>&1";
  const std::string cmds[] = {
      ssl + " req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ringpipe-test-ca -keyout " + out->ca_key + " -out " +
          out->ca_cert + quiet,
      ssl + " req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout " + out->key + " -out " + dir + "/server.csr" +
          quiet,
      ssl + " x509 -req -in " + dir + "/server.csr -CA " + out->ca_cert + " -CAkey " + out->ca_key +
          " -CAcreateserial -days 2 -extfile " + ext + " -out " + out->cert + quiet,
  };
  for (const std::string& c : cmds) {
    if (std::system(c.c_str()) != 0) return false;
  }
  return true;
}

bool make_self_signed_cert(const std::string& dir, const std::string& san, std::string* cert, std::string* key) {
  *cert = dir + "/cert.pem";
  *key = dir + "/key.pem";
  const std::string cn = san.substr(san.find(':') + 1);
  const std::string gen = "/usr/bin/openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=" + cn +
                          " -addext subjectAltName=" + san + " -keyout " + *key + " -out " + *cert +
                          " > /dev/null 2>&1";
  return std::system(gen.c_str()) == 0;
}

std::string tls_handshake(std::uint16_t port, const std::string& args, const std::string& out) {
  const std::string cmd =
      "echo | /usr/bin/timeout 10 /usr/bin/openssl s_client -connect 127.0.0.1:" + std::to_string(port) + " " + args +
      " > " + out + " 2>&1";
  (void)std::system(cmd.c_str());
  std::ifstream in(out);
  std::stringstream text;
  text << in.rdbuf();
  const std::string s = text.str();
  const std::size_t at = s.find("\nNew, ");
  if (at == std::string::npos) return "";
  const std::string line = s.substr(at + 6, s.find('\n', at + 1) - at - 6);
  return line.find("(NONE)") != std::string::npos ? "" : line;
}

PrometheusServer::PrometheusServer(std::string dir, std::uint16_t scrape_port)
    : dir_(std::move(dir)), scrape_port_(scrape_port), port_(free_tcp_port()) {
  std::ofstream cfg(dir_ + "/prometheus.yml");
  cfg << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n";
  if (scrape_port_ != 0) {
    cfg << "scrape_configs:\n  - job_name: ringpipe\n    static_configs:\n      - targets: ['127.0.0.1:" << scrape_port_
        << "']\n";
  }
}

PrometheusServer::~PrometheusServer() { stop(); }

void PrometheusServer::set_config(const std::string& yaml) { std::ofstream(dir_ + "/prometheus.yml") << yaml; }

void PrometheusServer::use_tls(const std::string& cert_file, const std::string& key_file, const std::string& ca_file) {
  std::ofstream(dir_ + "/web.yml") << "tls_server_config:\n  cert_file: " << cert_file << "\n  key_file: " << key_file
                                   << "\n";
  tls_ca_file_ = ca_file;
}

std::pair<int, std::string> PrometheusServer::get(const std::string& target, std::chrono::milliseconds timeout) {
  if (tls_ca_file_.empty()) return http_get(port_, target, "", timeout);
  return https_get(port_, target, tls_ca_file_, "", timeout);
}

bool PrometheusServer::start(std::chrono::milliseconds timeout) {
  if (pid_ > 0) return true;
  const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
  const std::string config = "--config.file=" + dir_ + "/prometheus.yml";
  const std::string data = "--storage.tsdb.path=" + dir_ + "/data";
  const std::string log = dir_ + "/prometheus.log";
  const std::string web = tls_ca_file_.empty() ? "" : "--web.config.file=" + dir_ + "/web.yml";
  pid_ = ::fork();
  if (pid_ == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<std::string> args = {kPrometheusBinary, config, data, listen, "--web.enable-remote-write-receiver",
                                     "--log.level=warn"};
    if (!web.empty()) args.push_back(web);
    args.insert(args.end(), flags_.begin(), flags_.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(kPrometheusBinary, argv.data());
    ::_exit(127);
  }
  if (pid_ < 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (get("/-/ready", 1s).first == 200) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

void PrometheusServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 1000; ++i) {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(10ms);
  }
  ::kill(pid_, SIGKILL);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
}

namespace {

std::string url_encode(const std::string& s) {
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

std::optional<double> PrometheusServer::query(const std::string& promql) { return query_at(promql, -1); }

std::optional<double> PrometheusServer::query_at(const std::string& promql, std::int64_t time_ms) {
  std::string target = "/api/v1/query?query=" + url_encode(promql);
  if (time_ms >= 0) {
    char t[40];
    std::snprintf(t, sizeof t, "&time=%lld.%03lld", static_cast<long long>(time_ms / 1000),
                  static_cast<long long>(time_ms % 1000));
    target += t;
  }
  auto [status, body] = get(target, 5s);
  if (status != 200) return std::nullopt;
  // {"status":"success","data":{"resultType":"vector","result":[{"metric":{...},"value":[1.7e9,"5"]}]}}
  const auto v = body.find("\"value\":[");
  if (v == std::string::npos) return std::nullopt;
  const auto q1 = body.find('"', body.find(',', v));
  const auto q2 = body.find('"', q1 + 1);
  if (q1 == std::string::npos || q2 == std::string::npos) return std::nullopt;
  return std::strtod(body.substr(q1 + 1, q2 - q1 - 1).c_str(), nullptr);
}

std::optional<std::vector<std::pair<std::int64_t, double>>> PrometheusServer::range_samples(const std::string& promql) {
  auto [status, body] = get("/api/v1/query?query=" + url_encode(promql), 5s);
  if (status != 200) return std::nullopt;
  // {"status":"success","data":{"resultType":"matrix","result":[{"metric":{...},"values":[[1.7e9,"5"],...]}]}}
  std::size_t at = body.find("\"values\":[");
  if (at == std::string::npos) return std::nullopt;
  at += 10;
  std::vector<std::pair<std::int64_t, double>> out;
  while (at < body.size() && body[at] == '[') {
    char* end = nullptr;
    const double t = std::strtod(body.c_str() + at + 1, &end);
    const auto q1 = body.find('"', static_cast<std::size_t>(end - body.c_str()));
    const auto q2 = body.find('"', q1 + 1);
    if (q1 == std::string::npos || q2 == std::string::npos) return std::nullopt;
    out.emplace_back(std::llround(t * 1000), std::strtod(body.substr(q1 + 1, q2 - q1 - 1).c_str(), nullptr));
    at = q2 + 2;  // past `"]`
    if (at < body.size() && body[at] == ',') ++at;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::optional<double> PrometheusServer::wait_for_value(const std::string& promql, double want,
                                                       std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::optional<double> last;
  while (std::chrono::steady_clock::now() < deadline) {
    last = query(promql);
    if (last && *last == want) return last;
    std::this_thread::sleep_for(100ms);
  }
  return last;
}

std::string PrometheusServer::log_tail() const {
  std::ifstream in(dir_ + "/prometheus.log");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string s = ss.str();
  return s.size() > 3000 ? s.substr(s.size() - 3000) : s;
}

}  // namespace ringpipe::exporters::testing
