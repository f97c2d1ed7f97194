#include "ringpipe/exporters/config_adapter.hpp"

#include "ringpipe/stats/stats_segment.hpp"

namespace ringpipe::exporters {

Result<PrometheusExporterOptions> prometheus_options(const config::PipelineConfig& pipeline,
                                                     const config::ExporterConfig& exporter) {
  if (exporter.type != config::ExporterType::kPrometheus) {
    return invalid("exporter " + exporter.name + ": not a prometheus exporter");
  }
  const config::PrometheusExporterConfig& c = exporter.prometheus;
  PrometheusExporterOptions o;
  o.input = pipeline.ring_path(exporter.input);
  o.reader_name = exporter.reader.empty() ? exporter.name : exporter.reader;
  o.gating = exporter.gating;
  o.relabel = exporter.relabel;
  if (c.listen.transport != config::Transport::kTcp) {
    return invalid("exporter " + exporter.name + ": listen " + c.listen.to_string() + ": only tcp is supported");
  }
  std::string host = c.listen.host;  // "" = every address, IPv6 and IPv4 (statsd_exporter's ":9102")
  if (host.find(':') != std::string::npos) host = "[" + host + "]";  // IPv6 literal
  o.listen = host + ":" + std::to_string(c.listen.port);
  o.path = c.path;
  for (const config::RingConfig& r : pipeline.rings) o.describe_rings.push_back(pipeline.ring_path(r.name));
  o.stats_dir = pipeline.ring_path("");
  o.stats_path = pipeline.ring_path(exporter.name) + std::string(stats::kStatsFileSuffix);
  o.component = exporter.name;
  if (c.tls && c.tls->enabled())
    o.tls = TlsFiles{.cert_file = c.tls->cert_file,
                     .key_file = c.tls->key_file,
                     .ca_file = c.tls->ca_file,
                     .min_version = c.tls->min_version,
                     .max_version = c.tls->max_version,
                     .cipher_suites = c.tls->cipher_suites,
                     .prefer_server_cipher_suites = c.tls->prefer_server_cipher_suites};
  for (const config::BasicAuthUser& u : c.basic_auth_users) {
    o.basic_auth_users.push_back({u.username, u.password, u.bcrypt});
  }
  o.max_connections = c.max_connections;
  o.header_timeout = c.header_timeout;
  o.quarantine_after_crashes = c.quarantine_after_crashes;
  o.relay_ttl = c.relay_ttl;
  return o;
}

Result<RemoteWriteOptions> remote_write_options(const config::PipelineConfig& pipeline,
                                                const config::ExporterConfig& exporter) {
  if (exporter.type != config::ExporterType::kRemoteWrite) {
    return invalid("exporter " + exporter.name + ": not a remote_write exporter");
  }
  const config::RemoteWriteConfig& c = exporter.remote_write;
  const bool https = c.url.rfind("https://", 0) == 0;
  if (c.tls && !https) {
    return invalid("exporter " + exporter.name + ": tls: url " + c.url + " is not https://");
  }
  RemoteWriteOptions o;
  o.input = pipeline.ring_path(exporter.input);
  o.reader_name = exporter.reader.empty() ? exporter.name : exporter.reader;
  o.gating = exporter.gating;
  o.relabel = exporter.relabel;
  o.url = c.url;
  o.batch_size = c.batch_size;
  o.max_in_flight = c.max_in_flight;
  o.timeout = c.timeout;
  o.retry_min_backoff = c.retry_min_backoff;
  o.retry_max_backoff = c.retry_max_backoff;
  for (const auto& [k, v] : c.headers) o.headers.emplace_back(k, v);
  if (c.basic_auth) o.basic_auth = BasicAuthCredentials{c.basic_auth->username, c.basic_auth->password};
  o.bearer_token = c.bearer_token;
  o.stats_path = pipeline.ring_path(exporter.name) + std::string(stats::kStatsFileSuffix);
  o.component = exporter.name;
  if (c.tls) {
    o.tls = RemoteWriteTls{c.tls->ca_file, c.tls->cert_file, c.tls->key_file, c.tls->insecure_skip_verify};
  }
  return o;
}

}  // namespace ringpipe::exporters
