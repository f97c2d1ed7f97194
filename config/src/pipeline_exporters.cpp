// exporters.<name>: the type (which decides the known keys), input ring,
// reader and gating, the keys of type: prometheus, and TLS blocks (also used
// by remote_write, read in its own file).
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "pipeline_loader.hpp"
#include "relabel_reader.hpp"

namespace ringpipe::config::detail {

std::uint64_t digest_of_files(const TlsConfig& t) {
  std::string all;
  for (const std::string* path : {&t.cert_file, &t.key_file, &t.ca_file}) {
    if (path->empty()) continue;
    std::ifstream in(*path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    all += text.str();
    all += '\0';
  }
  return std::hash<std::string>{}(all);
}

void Loader::read_exporter(const YamlNode& key, const YamlNode& value) {
  ExporterConfig e;
  e.name = key.scalar;
  e.reader = e.name;
  e.position = key.position;
  const std::string who = "exporter " + quote(e.name);
  // The type decides which keys are known; read it first.
  std::optional<ExporterType> type;
  const YamlNode* type_node = nullptr;
  if (value.is_map()) {
    for (const auto& [k, v] : value.entries) {
      if (k.is_scalar() && k.scalar == "type") type_node = &v;
    }
  }
  if (type_node == nullptr) {
    d_.add(e.position, who + ": found no type, expected type: prometheus or remote_write");
  } else if (type_node->is_scalar() && type_node->scalar == "prometheus") {
    type = ExporterType::kPrometheus;
  } else if (type_node->is_scalar() && type_node->scalar == "remote_write") {
    type = ExporterType::kRemoteWrite;
  } else {
    d_.add(*type_node, who + " type: found " + describe(*type_node) + ", expected prometheus or remote_write");
  }
  e.type = type.value_or(ExporterType::kPrometheus);
  const auto prometheus_keys = {std::string_view("type"),
                                std::string_view("input"),
                                std::string_view("reader"),
                                std::string_view("listen"),
                                std::string_view("path"),
                                std::string_view("tls"),
                                std::string_view("basic_auth_users"),
                                std::string_view("gating"),
                                std::string_view("max_connections"),
                                std::string_view("header_timeout"),
                                std::string_view("quarantine_after_crashes"),
                                std::string_view("relay_ttl"),
                                std::string_view("metric_relabel_configs")};
  const auto remote_keys = {std::string_view("type"),
                            std::string_view("input"),
                            std::string_view("reader"),
                            std::string_view("url"),
                            std::string_view("batch_size"),
                            std::string_view("batch_time"),
                            std::string_view("max_in_flight"),
                            std::string_view("timeout"),
                            std::string_view("retry_min_backoff"),
                            std::string_view("retry_max_backoff"),
                            std::string_view("headers"),
                            std::string_view("basic_auth"),
                            std::string_view("bearer_token"),
                            std::string_view("tls"),
                            std::string_view("gating"),
                            std::string_view("write_relabel_configs")};
  if (!type) {
    // Unknown type: check nothing type-specific, but still the common keys.
    Fields f(body(value), who, {"type", "input", "reader"}, d_quiet_);
    read_reader(f, e.reader);
    use_ring(f, "input", who, false, e.position, e.input, e.reader);
    config_.exporters.push_back(std::move(e));
    return;
  }
  Fields f(body(value), who, *type == ExporterType::kPrometheus ? prometheus_keys : remote_keys, d_);
  read_reader(f, e.reader);
  // A push exporter may stall for as long as its endpoint is down: by
  // default it must not hold back the ring's producer and its other readers.
  e.gating = *type == ExporterType::kPrometheus;
  if (const auto* v = f.get("gating")) {
    if (auto b = detail::read_bool(*v, f.at("gating"), d_)) e.gating = *b;
  }
  use_ring(f, "input", who, false, e.position, e.input, e.reader);
  // Prometheus' names: metric_relabel_configs where series are scraped,
  // write_relabel_configs where they are remote-written.
  const std::string_view relabel_key =
      *type == ExporterType::kPrometheus ? "metric_relabel_configs" : "write_relabel_configs";
  if (const auto* v = f.get(relabel_key)) read_relabel_configs(*v, f.at(relabel_key), e.relabel, d_);
  if (*type == ExporterType::kPrometheus) {
    auto& p = e.prometheus;
    std::vector<ListenAddress> addresses;
    if (const auto* v = f.get("listen")) {
      if (v->is_sequence()) {
        d_.add(*v, f.at("listen") + ": found a list, expected one host:port such as 0.0.0.0:9102");
      } else {
        read_listen(*v, f.at("listen"), Transport::kTcp, addresses, who);
      }
    } else {
      // statsd_exporter's ":9102": IPv6 and IPv4 on one socket.
      ListenAddress a{Transport::kTcp, "", kPrometheusDefaultPort, "", e.position};
      listeners_.push_back(Listener{a, who});
      addresses.push_back(a);
    }
    if (!addresses.empty()) {
      p.listen = addresses.front();
      if (p.listen.transport != Transport::kTcp) {
        d_.add(p.listen.position, f.at("listen") + ": found " + quote(p.listen.to_string()) +
                                      ", expected a TCP host:port such as 0.0.0.0:9102");
      }
    }
    if (const auto* v = f.get("path")) {
      if (auto s = detail::read_string(*v, f.at("path"), d_)) {
        if (s->empty() || s->front() != '/') {
          d_.add(*v, f.at("path") + ": found " + describe(*v) + ", expected a path starting with '/'");
        } else {
          p.path = *s;
        }
      }
    }
    if (const auto* v = f.get("tls")) read_tls(*v, f.at("tls"), false, p.tls);
    read_uint_into(f, "max_connections", 4, 16384, p.max_connections);
    read_millis_into(f, "header_timeout", p.header_timeout);
    if (const auto* v = f.get("header_timeout"); v != nullptr && p.header_timeout.count() < 100) {
      d_.add(*v, f.at("header_timeout") + ": found " + describe(*v) + ", expected at least 100ms");
      p.header_timeout = std::chrono::milliseconds(5000);
    }
    read_uint_into(f, "quarantine_after_crashes", 0, 1000, p.quarantine_after_crashes);
    read_millis_into(f, "relay_ttl", p.relay_ttl);
    if (const auto* v = f.get("basic_auth_users")) {
      if (!v->is_map()) {
        d_.add(*v, f.at("basic_auth_users") + ": found " + describe(*v) + ", expected a map of user: password");
      } else {
        for (const auto& [user, password] : v->entries) {
          auto u = detail::read_string(user, f.at("basic_auth_users"), d_);
          auto pw = detail::read_string(password, f.at("basic_auth_users") + " " + (u ? *u : std::string()), d_);
          if (u && u->find(':') != std::string::npos) {
            d_.add(user, f.at("basic_auth_users") + ": found user " + quote(*u) + ", expected a name without ':'");
          } else if (u && pw) {
            p.basic_auth_users.push_back(BasicAuthUser{*u, *pw});
          }
        }
      }
    }
  } else {
    read_remote_write(f, who, e);
  }
  config_.exporters.push_back(std::move(e));
}

void Loader::read_tls(const YamlNode& v, const std::string& what, bool client, std::optional<TlsConfig>& out) {
  Fields f(&v, what,
           client ? std::initializer_list<std::string_view>{"cert_file", "key_file", "ca_file", "insecure_skip_verify"}
                  : std::initializer_list<std::string_view>{"cert_file", "key_file", "ca_file"},
           d_);
  if (!f.ok()) return;
  TlsConfig t;
  read_string_into(f, "cert_file", t.cert_file);
  read_string_into(f, "key_file", t.key_file);
  read_string_into(f, "ca_file", t.ca_file);
  if (const auto* b = f.get("insecure_skip_verify")) {
    if (auto x = detail::read_bool(*b, f.at("insecure_skip_verify"), d_)) t.insecure_skip_verify = *x;
  }
  if (t.cert_file.empty() != t.key_file.empty()) {
    d_.add(v, what + ": found " + std::string(t.cert_file.empty() ? "key_file" : "cert_file") +
                  " alone, expected cert_file and key_file together");
  } else if (!client && t.cert_file.empty()) {
    d_.add(v, what + ": found no cert_file, expected cert_file and key_file for a TLS listener");
  }
  t.contents_digest = digest_of_files(t);
  out = std::move(t);
}

}  // namespace ringpipe::config::detail
