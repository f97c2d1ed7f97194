#include "ringpipe/ingest/config_adapter.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>

namespace ringpipe::ingest {
namespace {

Protocol protocol_of(config::SourceType t) {
  switch (t) {
    case config::SourceType::kStatsd:
      return Protocol::kStatsd;
    case config::SourceType::kInflux:
      return Protocol::kInflux;
    case config::SourceType::kGraphite:
      return Protocol::kGraphite;
    case config::SourceType::kJson:
      return Protocol::kJson;
    case config::SourceType::kMqtt:
      return Protocol::kJson;  // MqttSource picks per payload
    case config::SourceType::kRemoteWrite:
      return Protocol::kJson;  // unused: RemoteWriteSource decodes itself
    case config::SourceType::kPrometheusScrape:
      return Protocol::kStatsd;  // unused: its own parser
  }
  return Protocol::kStatsd;
}

Precision precision_of(config::TimestampPrecision p) {
  switch (p) {
    case config::TimestampPrecision::kSeconds:
      return Precision::kSeconds;
    case config::TimestampPrecision::kMilliseconds:
      return Precision::kMilliseconds;
    case config::TimestampPrecision::kMicroseconds:
      return Precision::kMicroseconds;
    case config::TimestampPrecision::kNanoseconds:
      return Precision::kNanoseconds;
  }
  return Precision::kSeconds;
}

JsonOptions json_options(const config::SourceConfig& s) {
  JsonOptions o;
  o.value_field = s.json.value_field;
  o.name_field = s.json.name_field;
  o.name = s.json.name;
  o.timestamp_field = s.json.timestamp_field;
  o.timestamp_precision = precision_of(s.json.timestamp_precision);
  o.kind = s.json.counter ? sample::Kind::kCounter : sample::Kind::kGauge;
  o.max_labels = s.json.max_labels;
  o.max_line_bytes = s.max_line_length;
  return o;
}

bool ipv6_available() {
  const int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// A numeric address for the ingest server (which takes literals only).
Result<std::string> numeric_host(const std::string& host) {
  if (host.empty()) return std::string(ipv6_available() ? "::" : "0.0.0.0");
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICSERV;
  hints.ai_family = AF_UNSPEC;
  addrinfo* res = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), "0", &hints, &res); rc != 0 || res == nullptr)
    return invalid("resolve " + host + ": " + ::gai_strerror(rc));
  char buf[NI_MAXHOST] = {};
  const int rc = ::getnameinfo(res->ai_addr, res->ai_addrlen, buf, sizeof buf, nullptr, 0, NI_NUMERICHOST);
  ::freeaddrinfo(res);
  if (rc != 0) return invalid("resolve " + host + ": " + ::gai_strerror(rc));
  return std::string(buf);
}

// Written into every batch header: the source's 1-based position in the pipeline.
std::uint32_t source_id_of(const config::PipelineConfig& p, const config::SourceConfig& s) {
  for (std::size_t i = 0; i < p.sources.size(); ++i)
    if (p.sources[i].name == s.name) return static_cast<std::uint32_t>(i + 1);
  return 0;
}

// 0 means "never" in the config; the ingest server wants a real duration.
std::chrono::milliseconds or_forever(std::chrono::milliseconds d) {
  return d.count() == 0 ? std::chrono::milliseconds(std::chrono::hours(24 * 365)) : d;
}

}  // namespace

MqttConfig mqtt_config(const config::PipelineConfig& p, const config::SourceConfig& s) {
  const config::MqttSourceConfig& m = s.mqtt;
  MqttConfig c;
  c.name = s.name;
  c.source_id = source_id_of(p, s);
  c.relabel = s.relabel;
  c.host = m.host;
  c.port = m.port;
  c.tls = m.tls;
  c.ca_file = m.ca_file;
  c.cert_file = m.cert_file;
  c.key_file = m.key_file;
  c.username = m.username;
  c.password = m.password;
  c.client_id = m.client_id;
  c.topics = m.topics;
  c.qos = static_cast<int>(m.qos);
  switch (m.payload) {
    case config::MqttPayloadFormat::kInflux:
      c.payload = MqttPayload::kInflux;
      break;
    case config::MqttPayloadFormat::kJson:
      c.payload = MqttPayload::kJson;
      break;
    case config::MqttPayloadFormat::kValue:
      c.payload = MqttPayload::kValue;
      break;
  }
  c.topic_template = m.topic_template;
  c.metric_name = s.json.name;
  c.kind = s.json.counter ? sample::Kind::kCounter : sample::Kind::kGauge;
  c.parser.json = json_options(s);
  c.max_message_bytes = m.max_message_bytes;
  return c;
}

Result<RemoteWriteConfig> remote_write_config(const config::PipelineConfig& p, const config::SourceConfig& s) {
  RemoteWriteConfig c;
  c.name = s.name;
  c.source_id = source_id_of(p, s);
  c.relabel = s.relabel;
  if (s.listen.empty()) return invalid("no listen address");
  auto host = numeric_host(s.listen.front().host);
  if (!host) return tl::unexpected(host.error());
  c.address = *host;
  c.port = s.listen.front().port;
  c.path = s.remote_write.path;
  c.max_body_bytes = s.remote_write.max_body_bytes;
  c.max_labels = s.remote_write.max_labels;
  c.max_series_per_request = s.remote_write.max_series_per_request;
  c.max_labels_per_request = s.remote_write.max_labels_per_request;
  c.max_samples_per_request = s.remote_write.max_samples_per_request;
  c.max_inflight_body_bytes = static_cast<std::size_t>(s.remote_write.max_inflight_body_bytes);
  c.max_connections = s.max_connections;
  c.idle_timeout = or_forever(s.idle_timeout);
  return c;
}

PromScrapeConfig scrape_config(const config::PipelineConfig& p, const config::SourceConfig& s) {
  const config::ScrapeSourceConfig& m = s.scrape;
  PromScrapeConfig c;
  c.name = s.name;
  c.job = m.job;
  c.source_id = source_id_of(p, s);
  c.relabel = s.relabel;
  c.targets = m.targets;
  c.interval = m.interval;
  c.timeout = m.timeout;
  c.max_body_bytes = m.max_body_bytes;
  c.max_labels = m.max_labels;
  c.max_line_bytes = s.max_line_length;
  c.honor_labels = m.honor_labels;
  return c;
}

Result<std::vector<IngestConfig>> ingest_configs(const config::PipelineConfig& p, const config::SourceConfig& s) {
  IngestConfig base;
  base.name = s.name;
  base.source_id = source_id_of(p, s);
  base.parser.protocol = protocol_of(s.type);
  base.parser.statsd.dogstatsd_tags = s.tags.dogstatsd;
  base.parser.statsd.influxdb_tags = s.tags.influxdb;
  base.parser.statsd.librato_tags = s.tags.librato;
  base.parser.statsd.signalfx_tags = s.tags.signalfx;
  base.parser.json = json_options(s);
  base.relabel = s.relabel;

  std::vector<IngestConfig> out;
  std::size_t udp = 0, tcp = 0, unixgram = 0, unix_stream = 0;
  auto slot = [&](std::size_t& counter) -> IngestConfig& {
    if (counter == out.size()) out.push_back(base);
    return out[counter++];
  };
  for (const config::ListenAddress& a : s.listen) {
    switch (a.transport) {
      case config::Transport::kUdp: {
        auto host = numeric_host(a.host);
        if (!host)
          return tl::unexpected(Error{host.error().code, "listen " + a.to_string() + ": " + host.error().context});
        UdpConfig u;
        u.address = *host;
        u.port = a.port;
        u.sockets = s.udp_sockets;
        u.receive_buffer_bytes = static_cast<std::uint32_t>(std::min<std::uint64_t>(s.read_buffer_bytes, UINT32_MAX));
        slot(udp).udp = u;
        break;
      }
      case config::Transport::kTcp: {
        auto host = numeric_host(a.host);
        if (!host)
          return tl::unexpected(Error{host.error().code, "listen " + a.to_string() + ": " + host.error().context});
        TcpConfig t;
        t.address = *host;
        t.port = a.port;
        t.max_connections = s.max_connections;
        t.max_line_bytes = s.max_line_length;
        t.max_buffered_bytes = static_cast<std::size_t>(s.max_buffered_bytes);
        t.idle_timeout = or_forever(s.idle_timeout);
        slot(tcp).tcp = t;
        break;
      }
      case config::Transport::kUnixgram: {
        UnixDatagramConfig u;
        u.path = a.path;
        u.mode = s.socket_mode;
        u.receive_buffer_bytes = static_cast<std::uint32_t>(std::min<std::uint64_t>(s.read_buffer_bytes, UINT32_MAX));
        slot(unixgram).unix_datagram = u;
        break;
      }
      case config::Transport::kUnix: {
        UnixStreamConfig u;
        u.path = a.path;
        u.mode = s.socket_mode;
        u.max_connections = s.max_connections;
        u.max_line_bytes = s.max_line_length;
        u.max_buffered_bytes = static_cast<std::size_t>(s.max_buffered_bytes);
        u.idle_timeout = or_forever(s.idle_timeout);
        slot(unix_stream).unix_stream = u;
        break;
      }
    }
  }
  for (std::size_t i = 0; i < out.size(); ++i)
    if (out.size() > 1) out[i].name = s.name + "#" + std::to_string(i);
  return out;
}

std::uint32_t source_lanes(const config::SourceConfig& s) {
  if (s.type == config::SourceType::kMqtt) return 1;         // one client thread
  if (s.type == config::SourceType::kRemoteWrite) return 1;  // one HTTP server thread
  if (s.type == config::SourceType::kPrometheusScrape) return static_cast<std::uint32_t>(s.scrape.targets.size());
  std::uint32_t udp = 0, unixgram = 0, streams = 0, tcp = 0, unix_stream = 0;
  for (const auto& a : s.listen) {
    switch (a.transport) {
      case config::Transport::kUdp:
        ++udp;
        break;
      case config::Transport::kUnixgram:
        ++unixgram;
        break;
      case config::Transport::kTcp:
        ++tcp;
        break;
      case config::Transport::kUnix:
        ++unix_stream;
        break;
    }
  }
  streams = std::max(tcp, unix_stream);
  return udp * s.udp_sockets + unixgram + streams;
}

}  // namespace ringpipe::ingest
