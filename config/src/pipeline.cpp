#include "ringpipe/config/pipeline.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <system_error>
#include <tuple>

#include "pipeline_loader.hpp"
#include "relabel_reader.hpp"
#include "schema.hpp"

namespace ringpipe::config {

std::string_view transport_name(Transport t) noexcept {
  switch (t) {
    case Transport::kUdp:
      return "udp";
    case Transport::kTcp:
      return "tcp";
    case Transport::kUnix:
      return "unix";
    case Transport::kUnixgram:
      return "unixgram";
  }
  return "?";
}

std::string_view source_type_name(SourceType t) noexcept {
  switch (t) {
    case SourceType::kStatsd:
      return "statsd";
    case SourceType::kInflux:
      return "influx";
    case SourceType::kGraphite:
      return "graphite";
    case SourceType::kJson:
      return "json";
    case SourceType::kMqtt:
      return "mqtt";
    case SourceType::kRemoteWrite:
      return "remote_write";
    case SourceType::kPrometheusScrape:
      return "prometheus_scrape";
  }
  return "?";
}

std::string_view processor_type_name(ProcessorType t) noexcept {
  return t == ProcessorType::kRelay ? "relay" : "aggregate";
}

std::string_view exporter_type_name(ExporterType t) noexcept {
  return t == ExporterType::kPrometheus ? "prometheus" : "remote_write";
}

std::string ListenAddress::to_string() const {
  std::string out(transport_name(transport));
  out += "://";
  if (transport == Transport::kUnix || transport == Transport::kUnixgram) return out + path;
  if (host.find(':') != std::string::npos) {
    out += "[" + host + "]";
  } else {
    out += host;
  }
  return out + ":" + std::to_string(port);
}

tl::expected<ListenAddress, std::string> parse_listen_address(std::string_view text, std::optional<Transport> implied) {
  ListenAddress a;
  std::string_view rest = text;
  const auto scheme_end = text.find("://");
  if (scheme_end != std::string_view::npos) {
    const std::string_view scheme = text.substr(0, scheme_end);
    rest = text.substr(scheme_end + 3);
    if (scheme == "udp") {
      a.transport = Transport::kUdp;
    } else if (scheme == "tcp") {
      a.transport = Transport::kTcp;
    } else if (scheme == "unix") {
      a.transport = Transport::kUnix;
    } else if (scheme == "unixgram") {
      a.transport = Transport::kUnixgram;
    } else {
      return tl::unexpected("unknown scheme \"" + std::string(scheme) + "\"");
    }
  } else if (implied) {
    a.transport = *implied;
  } else {
    return tl::unexpected(std::string("no scheme"));
  }
  if (a.transport == Transport::kUnix || a.transport == Transport::kUnixgram) {
    if (rest.empty() || rest.front() != '/') return tl::unexpected(std::string("a socket path that is not absolute"));
    a.path = std::string(rest);
    return a;
  }
  std::string_view host;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return tl::unexpected(std::string("an IPv6 address without ']'"));
    host = rest.substr(1, close - 1);
    rest.remove_prefix(close + 1);
    if (rest.empty() || rest.front() != ':') return tl::unexpected(std::string("no port"));
    port = rest.substr(1);
  } else {
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) return tl::unexpected(std::string("no port"));
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return tl::unexpected(std::string("an IPv6 address without brackets"));
    }
  }
  for (char c : host) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '.' && c != '-' && c != ':' && c != '_' && c != '%') {
      return tl::unexpected("an invalid host \"" + std::string(host) + "\"");
    }
  }
  const auto p = detail::parse_uint(port);
  if (!p || *p > 65535) return tl::unexpected("an invalid port \"" + std::string(port) + "\"");
  a.host = std::string(host);
  a.port = static_cast<std::uint16_t>(*p);
  return a;
}

std::string PipelineConfig::ring_path(std::string_view ring) const {
  std::string out = run_dir;
  if (!out.empty() && out.back() != '/') out += '/';
  out += pipeline;
  out += '/';
  out += ring;
  return out;
}

const RingConfig* PipelineConfig::find_ring(std::string_view name) const noexcept {
  for (const auto& r : rings) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

namespace {

std::optional<std::string> process_env(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

}  // namespace

ConfigResult<PipelineConfig> parse_pipeline(std::string_view text, std::string_view filename, const EnvLookup& env) {
  std::vector<Diagnostic> main;
  std::vector<Diagnostic> nested;
  detail::Loader loader(text, filename, env, main, nested);
  PipelineConfig config = loader.run();
  if (main.empty() && nested.empty()) return config;
  std::stable_sort(main.begin(), main.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.position.line, a.position.column) < std::tie(b.position.line, b.position.column);
  });
  ConfigError error;
  error.diagnostics = std::move(main);
  error.diagnostics.insert(error.diagnostics.end(), std::make_move_iterator(nested.begin()),
                           std::make_move_iterator(nested.end()));
  return tl::unexpected(std::move(error));
}

ConfigResult<relabel::Rules> parse_relabel_configs(std::string_view text, std::string_view filename) {
  std::vector<Diagnostic> diags;
  relabel::Rules rules;
  if (auto root = detail::parse_yaml(text, filename, diags)) {
    detail::Diags d(diags);
    detail::read_relabel_configs(*root, "relabel_configs", rules, d);
  }
  if (diags.empty()) return rules;
  return tl::unexpected(ConfigError{std::move(diags)});
}

ConfigResult<PipelineConfig> parse_pipeline(std::string_view text, std::string_view filename) {
  return parse_pipeline(text, filename, EnvLookup(process_env));
}

ConfigResult<PipelineConfig> load_pipeline(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int saved = errno;
    return tl::unexpected(
        ConfigError{{Diagnostic{Position{path, 0, 0}, "cannot read pipeline file: " +
                                                          std::error_code(saved, std::system_category()).message()}}});
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_pipeline(text.str(), path);
}

PipelineConfig default_pipeline() {
  PipelineConfig p;
  p.pipeline = "default";
  RingConfig raw;
  raw.name = "raw";
  // With the processor's state and the stats segments the built-in pipeline
  // takes about 42 MiB of /dev/shm, so it starts in Docker's default 64 MiB.
  raw.size_bytes = 16ull << 20;
  RingConfig metrics;
  metrics.name = "metrics";
  metrics.size_bytes = 8ull << 20;
  p.rings = {raw, metrics};

  SourceConfig statsd;
  statsd.name = "statsd";
  statsd.type = SourceType::kStatsd;
  // ":9125" as statsd_exporter has it: every address of both families (IPv6
  // when the host has it, taking IPv4 on the same socket).
  statsd.listen = {ListenAddress{Transport::kUdp, "", kStatsdDefaultPort, "", {}},
                   ListenAddress{Transport::kTcp, "", kStatsdDefaultPort, "", {}}};
  statsd.output = "raw";
  p.sources = {statsd};

  ProcessorConfig aggregate;
  aggregate.name = "aggregate";
  aggregate.reader = "aggregate";
  aggregate.input = "raw";
  aggregate.output = "metrics";
  aggregate.summary.quantiles.assign(std::begin(kDefaultQuantiles), std::end(kDefaultQuantiles));
  aggregate.summary.max_age = kDefaultSummaryMaxAge;
  aggregate.summary.age_buckets = kDefaultSummaryAgeBuckets;
  aggregate.summary.buf_cap = kDefaultSummaryBufCap;
  aggregate.histogram.buckets.assign(std::begin(kDefaultBuckets), std::end(kDefaultBuckets));
  p.processors = {aggregate};

  ExporterConfig prometheus;
  prometheus.name = "prometheus";
  prometheus.reader = "prometheus";
  prometheus.type = ExporterType::kPrometheus;
  prometheus.input = "metrics";
  // statsd_exporter's ":9102": IPv6 and IPv4 on one socket (IPv4 alone without IPv6).
  prometheus.prometheus.listen = ListenAddress{Transport::kTcp, "", kPrometheusDefaultPort, "", {}};
  prometheus.prometheus.path = "/metrics";
  p.exporters = {prometheus};
  return p;
}

}  // namespace ringpipe::config
