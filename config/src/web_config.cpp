// The exporter-toolkit web config file (--web.config.file) -> the Prometheus
// exporter's TLS and basic auth.

#include "ringpipe/config/web_config.hpp"

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "pipeline_loader.hpp"
#include "schema.hpp"

namespace ringpipe::config {
namespace {

using detail::describe;
using detail::Diags;
using detail::Fields;
using detail::quote;
using detail::YamlNode;

// Keys of the exporter-toolkit's format that the HTTP server (Boost.Beast with
// OpenSSL) cannot honour, and why: refused rather than silently dropped.
struct Unsupported {
  std::string_view key;
  std::string_view why;
};
constexpr Unsupported kUnsupportedTls[] = {
    {"curve_preferences", "the HTTP server takes OpenSSL's default curves, expected no curve_preferences"},
    {"cert", "inline certificates are not supported, expected cert_file"},
    {"key", "inline keys are not supported, expected key_file"},
    {"client_ca", "inline client CAs are not supported, expected client_ca_file"},
    {"client_allowed_sans", "client certificates are not matched by SAN, expected no client_allowed_sans"},
};

constexpr std::string_view kTlsVersions[] = {"TLS10", "TLS11", "TLS12", "TLS13"};

// The names cipher_suites takes: Go's tls.CipherSuites() (the exporter-toolkit
// looks names up there), with the OpenSSL name of each TLS 1.2-and-older
// suite. TLS 1.3's suites have none: Go does not let them be configured and
// ignores them in the list, and so does ringpipe.
struct CipherSuite {
  std::string_view go;
  std::string_view openssl;  // empty: a TLS 1.3 suite
};
constexpr CipherSuite kCipherSuites[] = {
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"},
    {"TLS_AES_128_GCM_SHA256", ""},
    {"TLS_AES_256_GCM_SHA384", ""},
    {"TLS_CHACHA20_POLY1305_SHA256", ""},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
};

// An absent key and an explicit null or empty value read the same: the default.
bool unset(const YamlNode* v) {
  return v == nullptr || v->is_null() || (v->is_sequence() && v->items.empty()) || (v->is_map() && v->entries.empty());
}

class WebConfigReader {
 public:
  WebConfigReader(std::string base_dir, Diags& d) : base_dir_(std::move(base_dir)), d_(d) {}

  void read(const YamlNode* top, WebConfig& out) {
    Fields f(top, "web config", {"tls_server_config", "http_server_config", "basic_auth_users"}, d_);
    if (!f.ok()) return;
    if (const auto* v = f.get("tls_server_config"); !unset(v)) read_tls(*v, out);
    if (const auto* v = f.get("http_server_config"); !unset(v)) read_http(*v);
    if (const auto* v = f.get("basic_auth_users"); !unset(v)) read_users(*v, f.at("basic_auth_users"), out);
  }

 private:
  // A readable file, relative to the web config file's folder.
  std::optional<std::string> file(const Fields& f, std::string_view key) {
    const YamlNode* v = f.get(key);
    if (unset(v)) return std::nullopt;
    auto s = detail::read_string(*v, f.at(key), d_);
    if (!s || s->empty()) return std::nullopt;
    std::filesystem::path p(*s);
    if (p.is_relative() && !base_dir_.empty()) p = std::filesystem::path(base_dir_) / p;
    std::ifstream in(p, std::ios::binary);
    if (!in) {
      const int saved = errno;
      d_.add(*v, f.at(key) + ": found " + quote(p.string()) + ", which cannot be read (" +
                     std::error_code(saved, std::system_category()).message() + "), expected a readable PEM file");
      return std::nullopt;
    }
    return p.string();
  }

  void read_tls(const YamlNode& v, WebConfig& out) {
    const std::string where = "web config tls_server_config";
    Fields f(
        &v, where,
        {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version", "cipher_suites",
         "prefer_server_cipher_suites", "curve_preferences", "cert", "key", "client_ca", "client_allowed_sans"},
        d_);
    if (!f.ok()) return;
    for (const Unsupported& u : kUnsupportedTls) {
      if (const auto* x = f.get(u.key); !unset(x)) {
        d_.add(*x, f.at(u.key) + ": found " + describe(*x) + ", not supported by ringpipe: " + std::string(u.why));
      }
    }
    TlsConfig t;
    const bool has_cert = !unset(f.get("cert_file"));
    const bool has_key = !unset(f.get("key_file"));
    if (auto c = file(f, "cert_file")) t.cert_file = *c;
    if (auto k = file(f, "key_file")) t.key_file = *k;
    if (auto ca = file(f, "client_ca_file")) t.ca_file = *ca;
    const bool has_ca = !unset(f.get("client_ca_file"));

    std::string auth = "NoClientCert";
    if (const auto* a = f.get("client_auth_type"); !unset(a)) {
      if (auto s = detail::read_string(*a, f.at("client_auth_type"), d_)) auth = *s;
      if (auth != "NoClientCert" && auth != "RequireAndVerifyClientCert") {
        const bool known =
            auth == "RequestClientCert" || auth == "RequireAnyClientCert" || auth == "VerifyClientCertIfGiven";
        d_.add(*a, f.at("client_auth_type") + ": found " + quote(auth) + (known ? ", not supported by ringpipe" : "") +
                       ", expected NoClientCert or RequireAndVerifyClientCert (with client_ca_file)");
      }
    }
    if (auth == "RequireAndVerifyClientCert" && !has_ca) {
      d_.add(v, where +
                    ": found client_auth_type RequireAndVerifyClientCert without client_ca_file, expected "
                    "client_ca_file naming the CAs of the clients' certificates");
    }
    if (auth == "NoClientCert" && has_ca) {
      d_.add(*f.get("client_ca_file"), f.at("client_ca_file") +
                                           ": found client_ca_file with client_auth_type NoClientCert, expected "
                                           "client_auth_type: RequireAndVerifyClientCert");
    }

    auto version = [&](std::string_view key) -> std::optional<std::string> {
      const auto* x = f.get(key);
      if (unset(x)) return std::nullopt;
      auto s = detail::read_string(*x, f.at(key), d_);
      if (!s) return std::nullopt;
      if (std::find(std::begin(kTlsVersions), std::end(kTlsVersions), *s) == std::end(kTlsVersions)) {
        d_.add(*x, f.at(key) + ": found " + quote(*s) + ", expected TLS10, TLS11, TLS12 or TLS13");
        return std::nullopt;
      }
      return s;
    };
    // The exporter-toolkit's default minimum is TLS 1.2, its maximum TLS 1.3.
    t.min_version = version("min_version").value_or("TLS12");
    if (auto max = version("max_version")) {
      // "TLS10" < "TLS11" < "TLS12" < "TLS13" as strings too.
      if (*max < t.min_version) {
        d_.add(*f.get("max_version"), f.at("max_version") + ": found " + quote(*max) + ", expected at least " +
                                          "min_version (" + t.min_version + ")");
      }
      t.max_version = *max;
    }
    read_cipher_suites(f, t);
    if (const auto* p = f.get("prefer_server_cipher_suites"); !unset(p)) {
      if (auto b = detail::read_bool(*p, f.at("prefer_server_cipher_suites"), d_)) {
        t.prefer_server_cipher_suites = *b;
      }
    }

    if (!has_cert && !has_key && !has_ca && auth == "NoClientCert") return;  // no TLS, as the exporter-toolkit
    if (!has_cert) d_.add(v, where + ": found no cert_file, expected cert_file and key_file");
    if (!has_key) d_.add(v, where + ": found no key_file, expected cert_file and key_file");
    t.contents_digest =
        detail::digest_of_files(t);  // a certificate renewed under the same name restarts the exporter at reload
    out.tls = std::move(t);
  }

  // cipher_suites: Go's names, kept as OpenSSL's, in the file's order.
  void read_cipher_suites(const Fields& f, TlsConfig& t) {
    const YamlNode* v = f.get("cipher_suites");
    if (unset(v)) return;
    if (!v->is_sequence()) {
      d_.add(*v, f.at("cipher_suites") + ": found " + describe(*v) + ", expected a list of cipher suite names");
      return;
    }
    bool any_tls13 = false;
    for (const YamlNode& item : v->items) {
      auto name = detail::read_string(item, f.at("cipher_suites"), d_);
      if (!name) continue;
      const auto* it = std::find_if(std::begin(kCipherSuites), std::end(kCipherSuites),
                                    [&](const CipherSuite& c) { return c.go == *name; });
      if (it == std::end(kCipherSuites)) {
        d_.add(item, f.at("cipher_suites") + ": found " + quote(*name) +
                         ", expected a name from Go's tls.CipherSuites(), e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
      } else if (it->openssl.empty()) {
        any_tls13 = true;  // not configurable: TLS 1.3 keeps its suites
      } else if (std::find(t.cipher_suites.begin(), t.cipher_suites.end(), it->openssl) == t.cipher_suites.end()) {
        t.cipher_suites.emplace_back(it->openssl);
      }
    }
    if (t.cipher_suites.empty() && any_tls13 && t.min_version != "TLS13") {
      d_.add(*v, f.at("cipher_suites") +
                     ": found only TLS 1.3 suites, which are not configurable, expected at least one suite of "
                     "TLS 1.2 (or min_version: TLS13)");
    }
  }

  void read_http(const YamlNode& v) {
    Fields f(&v, "web config http_server_config", {"http2", "headers"}, d_);
    if (!f.ok()) return;
    if (const auto* h = f.get("http2"); !unset(h)) {
      if (auto b = detail::read_bool(*h, f.at("http2"), d_); b && *b) {
        d_.add(*h, f.at("http2") +
                       ": found true, not supported by ringpipe: the HTTP server speaks HTTP/1.1 only, expected "
                       "http2: false or no http2");
      }
    }
    if (const auto* h = f.get("headers"); !unset(h)) {
      d_.add(*h, f.at("headers") + ": found " + describe(*h) +
                     ", not supported by ringpipe: the HTTP server sets no extra response headers, expected no "
                     "headers");
    }
  }

  void read_users(const YamlNode& v, const std::string& what, WebConfig& out) {
    if (!v.is_map()) {
      d_.add(v, what + ": found " + describe(v) + ", expected a map of user: bcrypt hash");
      return;
    }
    for (const auto& [user, hash] : v.entries) {
      auto u = detail::read_string(user, what, d_);
      if (!u) continue;
      auto h = detail::read_string(hash, what + " " + *u, d_);
      if (!h) continue;
      if (u->empty() || u->find(':') != std::string::npos) {
        d_.add(user, what + ": found user " + quote(*u) + ", expected a non-empty name without ':'");
      } else if (!is_bcrypt_hash(*h)) {
        d_.add(hash, what + " " + *u +
                         ": found a password that is not a bcrypt hash, expected $2a$, $2b$ or $2y$, "
                         "a cost of 04..31 and 53 characters (htpasswd -nBC 10 \"\" | tr -d ':')");
      } else {
        out.basic_auth_users.push_back(BasicAuthUser{*u, *h, true});
      }
    }
  }

  std::string base_dir_;
  Diags& d_;
};

}  // namespace

bool is_bcrypt_hash(std::string_view h) noexcept {
  // $2b$10$ + 22 characters of salt + 31 of hash.
  if (h.size() != 60 || h.substr(0, 2) != "$2" || h[3] != '$' || h[6] != '$') return false;
  if (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') return false;
  if (h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9') return false;
  const int cost = (h[4] - '0') * 10 + (h[5] - '0');
  if (cost < 4 || cost > 31) return false;
  return std::all_of(h.begin() + 7, h.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '/';
  });
}

ConfigResult<WebConfig> parse_web_config(std::string_view text, std::string_view filename,
                                         const std::string& base_dir) {
  std::vector<Diagnostic> diagnostics;
  Diags d(diagnostics);
  WebConfig config;
  auto root = detail::parse_yaml(text, filename, diagnostics);
  if (root) WebConfigReader(base_dir, d).read(root->is_null() ? nullptr : &*root, config);
  if (!diagnostics.empty()) return tl::unexpected(ConfigError{std::move(diagnostics)});
  return config;
}

ConfigResult<WebConfig> load_web_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int saved = errno;
    return tl::unexpected(
        ConfigError{{Diagnostic{Position{path, 0, 0}, "cannot read web config file: " +
                                                          std::error_code(saved, std::system_category()).message()}}});
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_web_config(text.str(), path, std::filesystem::path(path).parent_path().string());
}

}  // namespace ringpipe::config
