#pragma once
// The Prometheus exporter-toolkit web configuration file that statsd_exporter
// reads with --web.config.file (TLS and bcrypt basic auth), mapped onto the
// Prometheus exporter's `tls` and `basic_auth_users`. What the HTTP server
// cannot honour is refused with a diagnostic naming the key, never ignored.
// Plain functions of their arguments; safe from any thread.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringpipe/config/diagnostic.hpp"
#include "ringpipe/config/pipeline.hpp"

namespace ringpipe::config {

struct WebConfig {
  std::optional<TlsConfig> tls;                 // tls_server_config; none = plain HTTP
  std::vector<BasicAuthUser> basic_auth_users;  // basic_auth_users: bcrypt hashes (BasicAuthUser::bcrypt)
};

// Parses the text of a web config file. Relative cert_file, key_file and
// client_ca_file are taken from `base_dir` (the file's folder, as the
// exporter-toolkit does); each file named must be readable now.
[[nodiscard]] ConfigResult<WebConfig> parse_web_config(std::string_view text, std::string_view filename,
                                                       const std::string& base_dir);

// Reads and parses the file at `path`.
[[nodiscard]] ConfigResult<WebConfig> load_web_config_file(const std::string& path);

// Whether `hash` has the form of a bcrypt hash: $2a$, $2b$ or $2y$, a cost of
// 04..31, '$', then 53 characters of bcrypt's base64 alphabet.
[[nodiscard]] bool is_bcrypt_hash(std::string_view hash) noexcept;

}  // namespace ringpipe::config
