#include "components.hpp"

#include "ringpipe/common/mapping.hpp"
#include "ringpipe/stats/stats_segment.hpp"

#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <memory>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "ringpipe/common/log.hpp"
#include "ringpipe/exporters/config_adapter.hpp"
#include "ringpipe/ingest/mqtt_source.hpp"
#include "ringpipe/ingest/ring_target.hpp"
#include "ringpipe/processors/config_adapter.hpp"
#include "ringpipe/processors/processor_stats.hpp"

namespace ringpipe::apps {
namespace {

// How often processors and exporters copy their counters into their stats segment.
constexpr std::chrono::milliseconds kStatsPublishInterval{200};

ring::Overflow overflow_of(config::OverflowPolicy p) {
  switch (p) {
    case config::OverflowPolicy::kBlock: return ring::Overflow::kBlock;
    case config::OverflowPolicy::kDrop: return ring::Overflow::kDrop;
    case config::OverflowPolicy::kOverwrite: return ring::Overflow::kOverwrite;
  }
  return ring::Overflow::kBlock;
}

ingest::Protocol protocol_of(config::SourceType t) {
  switch (t) {
    case config::SourceType::kStatsd: return ingest::Protocol::kStatsd;
    case config::SourceType::kInflux: return ingest::Protocol::kInflux;
    case config::SourceType::kGraphite: return ingest::Protocol::kGraphite;
    case config::SourceType::kJson: return ingest::Protocol::kJson;
    case config::SourceType::kMqtt: return ingest::Protocol::kJson;  // MqttSource picks per payload
    case config::SourceType::kRemoteWrite: return ingest::Protocol::kJson;  // unused: RemoteWriteSource decodes itself
    case config::SourceType::kPrometheusScrape: return ingest::Protocol::kStatsd;  // unused: its own parser
  }
  return ingest::Protocol::kStatsd;
}

ingest::Precision precision_of(config::TimestampPrecision p) {
  switch (p) {
    case config::TimestampPrecision::kSeconds: return ingest::Precision::kSeconds;
    case config::TimestampPrecision::kMilliseconds: return ingest::Precision::kMilliseconds;
    case config::TimestampPrecision::kMicroseconds: return ingest::Precision::kMicroseconds;
    case config::TimestampPrecision::kNanoseconds: return ingest::Precision::kNanoseconds;
  }
  return ingest::Precision::kSeconds;
}

ingest::JsonOptions json_options(const config::SourceConfig& s) {
  ingest::JsonOptions o;
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

// Lanes one source holds: as IngestServer takes them, one per UDP socket, one
// per unix datagram socket and one stream thread per server (see ingest_configs).
std::uint32_t source_lanes(const config::SourceConfig& s) {
  if (s.type == config::SourceType::kMqtt) return 1;  // one client thread
  if (s.type == config::SourceType::kRemoteWrite) return 1;  // one HTTP server thread
  if (s.type == config::SourceType::kPrometheusScrape) return static_cast<std::uint32_t>(s.scrape.targets.size());
  std::uint32_t udp = 0, unixgram = 0, streams = 0, tcp = 0, unix_stream = 0;
  for (const auto& a : s.listen) {
    switch (a.transport) {
      case config::Transport::kUdp: ++udp; break;
      case config::Transport::kUnixgram: ++unixgram; break;
      case config::Transport::kTcp: ++tcp; break;
      case config::Transport::kUnix: ++unix_stream; break;
    }
  }
  streams = std::max(tcp, unix_stream);
  return udp * s.udp_sockets + unixgram + streams;
}

std::string read_file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// --- fingerprints: every field that changes what a process does.

void put(std::string& out, std::string_view key, const auto& value) { out += fmt::format("{}={};", key, value); }

void put_ring(std::string& out, const config::PipelineConfig& p, std::string_view name) {
  const config::RingConfig* r = p.find_ring(name);
  if (!r) return;
  const ring::RingOptions o = ring_options(p, *r);
  out += fmt::format("ring {}: path={} cap={} lanes={} readers={} overflow={} max_record={} timeout={};", name,
                     p.ring_path(name), o.lane_capacity_bytes, o.lanes, o.max_readers,
                     ring::overflow_name(o.overflow), o.max_record_bytes, o.reader_timeout.count());
}

void put_tls(std::string& out, const std::optional<config::TlsConfig>& t) {
  if (!t) return;
  put(out, "tls", fmt::format("{}|{}|{}|{}", t->cert_file, t->key_file, t->ca_file, t->insecure_skip_verify));
  for (const std::string* f : {&t->cert_file, &t->key_file, &t->ca_file})
    if (!f->empty()) put(out, "tls_file", std::hash<std::string>{}(read_file_text(*f)));
}

std::string source_fingerprint(const config::PipelineConfig& p, const config::SourceConfig& s) {
  std::string out = "source;";
  put(out, "type", config::source_type_name(s.type));
  for (const auto& a : s.listen) put(out, "listen", a.to_string());
  put(out, "output", s.output);
  put(out, "tags", fmt::format("{}{}{}{}", s.tags.dogstatsd, s.tags.influxdb, s.tags.librato, s.tags.signalfx));
  put(out, "read_buffer", s.read_buffer_bytes);
  put(out, "udp_sockets", s.udp_sockets);
  put(out, "max_line", s.max_line_length);
  put(out, "max_conn", s.max_connections);
  put(out, "max_buffered", s.max_buffered_bytes);
  put(out, "idle", s.idle_timeout.count());
  put(out, "mode", s.socket_mode);
  put(out, "write_timeout", s.write_timeout.count());
  if (s.type == config::SourceType::kMqtt) {
    const config::MqttSourceConfig& m = s.mqtt;
    put(out, "mqtt", fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", m.broker, m.username,
                                 std::hash<std::string>{}(m.password), m.client_id, fmt::join(m.topics, ","), m.qos,
                                 static_cast<int>(m.payload), m.topic_template, m.ca_file, m.cert_file, m.key_file,
                                 m.max_message_bytes));
  }
  if (s.type == config::SourceType::kRemoteWrite) {
    const config::RemoteWriteSourceConfig& r = s.remote_write;
    put(out, "remote_write", fmt::format("{}|{}|{}|{}|{}|{}|{}", r.path, r.max_body_bytes, r.max_labels,
                                         r.max_series_per_request, r.max_labels_per_request,
                                         r.max_samples_per_request, r.max_inflight_body_bytes));
  }
  if (s.type == config::SourceType::kPrometheusScrape) {
    const config::ScrapeSourceConfig& c = s.scrape;
    put(out, "scrape", fmt::format("{}|{}|{}|{}|{}|{}|{}", fmt::join(c.targets, ","), c.interval.count(),
                                   c.timeout.count(), c.max_body_bytes, c.max_labels, c.honor_labels, c.job));
  }
  if (s.type == config::SourceType::kJson || s.type == config::SourceType::kMqtt) {
    put(out, "json", fmt::format("{}|{}|{}|{}|{}|{}|{}", s.json.value_field, s.json.name_field, s.json.name,
                                 s.json.timestamp_field, static_cast<int>(s.json.timestamp_precision), s.json.counter,
                                 s.json.max_labels));
  }
  put(out, "index", [&] {
    for (std::size_t i = 0; i < p.sources.size(); ++i)
      if (p.sources[i].name == s.name) return i;
    return std::size_t{0};
  }());
  put_ring(out, p, s.output);
  return out;
}

std::string processor_fingerprint(const config::PipelineConfig& p, const config::ProcessorConfig& c) {
  std::string out = "processor;";
  put(out, "type", config::processor_type_name(c.type));
  put(out, "input", c.input);
  put(out, "output", c.output);
  put(out, "reader", c.reader);
  put(out, "mapping", c.mapping_config);
  // The file's text, not just its name: editing the mapping is the usual reason to reload.
  if (!c.mapping_config.empty()) put(out, "mapping_text", read_file_text(c.mapping_config));
  put(out, "cache", fmt::format("{}/{}", c.mapping_cache.size, config::cache_type_name(c.mapping_cache.type)));
  put(out, "shards", c.shards);
  put(out, "flush", c.flush_interval.count());
  put(out, "ttl", c.ttl.count());
  put(out, "max_series", c.max_series);
  put(out, "max_series_per_metric", c.max_series_per_metric);
  put(out, "max_metrics", c.max_metrics);
  put(out, "max_name_length", c.max_name_length);
  put(out, "quarantine", c.quarantine_after_crashes);
  put(out, "state", c.state ? processor_state_dir(p, c) : std::string("off"));
  put(out, "observer", config::observer_type_name(c.observer_type));
  for (const auto& q : c.summary.quantiles) put(out, "q", fmt::format("{}/{}", q.quantile, q.error));
  put(out, "summary", fmt::format("{}/{}/{}", c.summary.max_age.count(), c.summary.age_buckets, c.summary.buf_cap));
  for (double b : c.histogram.buckets) put(out, "b", b);
  put(out, "native", fmt::format("{}/{}", c.histogram.native_histogram_bucket_factor,
                                 c.histogram.native_histogram_max_buckets));
  put_ring(out, p, c.input);
  put_ring(out, p, c.output);
  return out;
}

std::string exporter_fingerprint(const config::PipelineConfig& p, const config::ExporterConfig& e) {
  std::string out = "exporter;";
  put(out, "type", config::exporter_type_name(e.type));
  put(out, "input", e.input);
  put(out, "reader", e.reader);
  put(out, "gating", e.gating ? "true" : "false");
  if (e.type == config::ExporterType::kPrometheus) {
    const auto& c = e.prometheus;
    put(out, "listen", c.listen.to_string());
    put(out, "path", c.path);
    put_tls(out, c.tls);
    for (const auto& u : c.basic_auth_users) put(out, "user", u.username + ":" + u.password);
    put(out, "http", fmt::format("{}/{}", c.max_connections, c.header_timeout.count()));
    put(out, "quarantine", c.quarantine_after_crashes);
  } else {
    const auto& c = e.remote_write;
    put(out, "url", c.url);
    put(out, "batch", fmt::format("{}/{}/{}", c.batch_size, c.batch_time.count(), c.max_in_flight));
    put(out, "timeouts", fmt::format("{}/{}/{}", c.timeout.count(), c.retry_min_backoff.count(),
                                     c.retry_max_backoff.count()));
    for (const auto& [k, v] : c.headers) put(out, "header", k + ":" + v);
    if (c.basic_auth) put(out, "basic_auth", c.basic_auth->username + ":" + c.basic_auth->password);
    put(out, "bearer", c.bearer_token);
    put_tls(out, c.tls);
  }
  put_ring(out, p, e.input);
  return out;
}

// Signals a component waits for; blocked in every thread, taken by sigwaitinfo.
sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

// Blocks until SIGTERM or SIGINT; SIGHUP is logged and ignored (the
// supervisor restarts a component whose config changed).
// Returns kExitOk after a stop signal, or kExitFailure when a file this
// process maps was truncated under it (see UniqueMapping): the component
// stops rather than work on pages that are no longer the file's, and the
// restart's open refuses the file with its reason.
int wait_for_stop(const sigset_t& set, std::string_view name) {
  const timespec tick{0, 200'000'000};
  for (;;) {
    siginfo_t info{};
    const int sig = ::sigtimedwait(&set, &info, &tick);
    if (sig < 0) {  // EINTR, or a tick without a signal
      if (auto lost = lost_mapping()) {
        spdlog::error("{}: {} was truncated by another process while mapped here; stopping", name, *lost);
        return kExitFailure;
      }
      continue;
    }
    if (sig == SIGHUP) {
      spdlog::info("{}: SIGHUP ignored (a component reloads by restarting)", name);
      continue;
    }
    spdlog::info("{}: {} received, stopping", name, ::strsignal(sig));
    return kExitOk;
  }
}

// A source with its own threads (MqttSource, RemoteWriteSource,
// PromScrapeSource): opens the ring, creates and starts it with its stats
// segment, waits for a stop signal.
template <class Source, class Config>
int run_threaded_source(const config::PipelineConfig& p, const config::SourceConfig& s, const sigset_t& signals,
                        Config c, std::string_view doing) {
  const config::RingConfig* rc = p.find_ring(s.output);
  auto ring = ring::Ring::open_or_create(p.ring_path(s.output), ring_options(p, *rc));
  if (!ring) {
    spdlog::error("source {}: open ring {}: {}", s.name, s.output, ring.error().message());
    return kExitFailure;
  }
  ingest::RingTargetOptions target;
  target.claim_timeout = s.write_timeout;
  c.stats_path = stats_segment_path(p, s.name);
  auto source = Source::create(c, ingest::ring_target_factory(*ring, target));
  if (!source) {
    spdlog::error("source {}: {}", s.name, source.error().message());
    return kExitFailure;
  }
  if (auto st = (*source)->start(); !st) {
    spdlog::error("source {}: {}", s.name, st.error().message());
    return kExitFailure;
  }
  spdlog::info("source {}: {}, writing to ring {}", s.name, doing, s.output);
  const int exit_code = wait_for_stop(signals, s.name);
  (*source)->stop();
  spdlog::info("source {}: stopped ({} samples written, {} dropped)", s.name,
               (*source)->stats().samples_written.load(std::memory_order_relaxed),
               (*source)->stats().samples_dropped.load(std::memory_order_relaxed));
  return exit_code;
}

int run_mqtt_source(const config::PipelineConfig& p, const config::SourceConfig& s, const sigset_t& signals) {
  return run_threaded_source<ingest::MqttSource>(p, s, signals, mqtt_config(p, s), "subscribing at " + s.mqtt.broker);
}

int run_remote_write_source(const config::PipelineConfig& p, const config::SourceConfig& s, const sigset_t& signals) {
  auto c = remote_write_config(p, s);
  if (!c) {
    spdlog::error("source {}: {}", s.name, c.error().message());
    return kExitConfig;
  }
  return run_threaded_source<ingest::RemoteWriteSource>(
      p, s, signals, *c, fmt::format("receiving remote_write on http://{}:{}{}", c->address, c->port, c->path));
}

int run_source(const config::PipelineConfig& p, const config::SourceConfig& s, const sigset_t& signals) {
  if (s.type == config::SourceType::kMqtt) return run_mqtt_source(p, s, signals);
  if (s.type == config::SourceType::kRemoteWrite) return run_remote_write_source(p, s, signals);
  if (s.type == config::SourceType::kPrometheusScrape) {
    return run_threaded_source<ingest::PromScrapeSource>(
        p, s, signals, scrape_config(p, s),
        fmt::format("scraping {} every {} ms", fmt::join(s.scrape.targets, ", "), s.scrape.interval.count()));
  }
  auto configs = ingest_configs(p, s);
  if (!configs) {
    spdlog::error("source {}: {}", s.name, configs.error().message());
    return kExitConfig;
  }
  const config::RingConfig* rc = p.find_ring(s.output);
  auto ring = ring::Ring::open_or_create(p.ring_path(s.output), ring_options(p, *rc));
  if (!ring) {
    spdlog::error("source {}: open ring {}: {}", s.name, s.output, ring.error().message());
    return kExitFailure;
  }
  ingest::RingTargetOptions target;
  target.claim_timeout = s.write_timeout;
  // One stats segment per source process; its servers sum into it.
  auto stats = stats::StatsSegment::create(stats_segment_path(p, s.name), s.name, "source");
  if (!stats) {
    spdlog::error("source {}: {}", s.name, stats.error().message());
    return kExitFailure;
  }
  stats->reset_gauges();
  auto segment = std::make_shared<stats::StatsSegment>(std::move(*stats));
  for (ingest::IngestConfig& c : *configs) c.stats_segment = segment;
  std::vector<std::unique_ptr<ingest::IngestServer>> servers;
  for (const ingest::IngestConfig& c : *configs) {
    auto server = ingest::IngestServer::create(c, ingest::ring_target_factory(*ring, target));
    if (!server) {
      spdlog::error("source {}: {}", s.name, server.error().message());
      return kExitFailure;
    }
    servers.push_back(std::move(*server));
  }
  for (auto& server : servers) {
    if (auto st = server->start(); !st) {
      spdlog::error("source {}: {}", s.name, st.error().message());
      for (auto& started : servers) started->stop();
      return kExitFailure;
    }
  }
  spdlog::info("source {}: running, writing to ring {}", s.name, s.output);
  const int exit_code = wait_for_stop(signals, s.name);
  for (auto& server : servers) server->stop();
  std::uint64_t written = 0, dropped = 0;
  for (auto& server : servers) {
    written += server->stats().samples_written.load(std::memory_order_relaxed);
    dropped += server->stats().samples_dropped.load(std::memory_order_relaxed);
  }
  spdlog::info("source {}: stopped ({} samples written, {} dropped)", s.name, written, dropped);
  return exit_code;
}

int run_processor(const config::PipelineConfig& p, const config::ProcessorConfig& c, const sigset_t& signals) {
  for (const std::string& name : {c.input, c.output}) {
    auto ring = ring::Ring::open_or_create(p.ring_path(name), ring_options(p, *p.find_ring(name)));
    if (!ring) {
      spdlog::error("processor {}: open ring {}: {}", c.name, name, ring.error().message());
      return kExitFailure;
    }
  }
  const processors::ProcessorOptions options = processor_options(p, c);
  auto processor = processors::Processor::create(options);
  if (!processor) {
    spdlog::error("processor {}: {}", c.name, processor.error().message());
    return kExitFailure;
  }
  auto segment = stats::StatsSegment::create(stats_segment_path(p, c.name), c.name, "processor");
  if (!segment) {
    spdlog::error("processor {}: {}", c.name, segment.error().message());
    return kExitFailure;
  }
  segment->reset_gauges();
  auto publisher = processors::create_processor_publisher(*segment, **processor, options.engine);
  if (!publisher) {
    spdlog::error("processor {}: stats segment {}: {}", c.name, segment->path(), publisher.error().message());
    return kExitFailure;
  }
  if (auto st = (*processor)->start(); !st) {
    spdlog::error("processor {}: {}", c.name, st.error().message());
    return kExitFailure;
  }
  if (auto st = (*publisher)->start(kStatsPublishInterval); !st) {
    spdlog::error("processor {}: {}", c.name, st.error().message());
    (*processor)->stop();
    return kExitFailure;
  }
  spdlog::info("processor {}: running, {} -> {}", c.name, c.input, c.output);
  const int exit_code = wait_for_stop(signals, c.name);
  (*processor)->stop();
  (*publisher)->stop();
  const processors::EngineStats st = (*processor)->stats();
  spdlog::info("processor {}: stopped ({} samples, {} series, {} flushes)", c.name, st.samples, st.series_live,
               st.flushes);
  return exit_code;
}

// Creates, starts, waits for a stop signal, stops: the same for both exporters.
template <class Exporter, class Options>
int drive_exporter(const config::ExporterConfig& e, Result<Options> options, const sigset_t& signals) {
  if (!options) {
    spdlog::error("exporter {}: {}", e.name, options.error().message());
    return kExitConfig;
  }
  auto exporter = Exporter::create(std::move(*options));
  if (!exporter) {
    spdlog::error("exporter {}: {}", e.name, exporter.error().message());
    return kExitFailure;
  }
  if (auto st = (*exporter)->start(); !st) {
    spdlog::error("exporter {}: {}", e.name, st.error().message());
    return kExitFailure;
  }
  spdlog::info("exporter {}: running, reading ring {}", e.name, e.input);
  const int exit_code = wait_for_stop(signals, e.name);
  (*exporter)->stop();
  spdlog::info("exporter {}: stopped", e.name);
  return exit_code;
}

int run_exporter(const config::PipelineConfig& p, const config::ExporterConfig& e, const sigset_t& signals) {
  auto ring = ring::Ring::open_or_create(p.ring_path(e.input), ring_options(p, *p.find_ring(e.input)));
  if (!ring) {
    spdlog::error("exporter {}: open ring {}: {}", e.name, e.input, ring.error().message());
    return kExitFailure;
  }
  if (e.type == config::ExporterType::kPrometheus)
    return drive_exporter<exporters::PrometheusExporter>(e, exporters::prometheus_options(p, e), signals);
  return drive_exporter<exporters::RemoteWriteExporter>(e, exporters::remote_write_options(p, e), signals);
}

}  // namespace

std::vector<ComponentInfo> pipeline_components(const config::PipelineConfig& p) {
  std::vector<ComponentInfo> out;
  for (const auto& s : p.sources) out.push_back(ComponentInfo{s.name, ComponentKind::kSource, {}, {s.output}, ""});
  for (const auto& c : p.processors)
    out.push_back(ComponentInfo{c.name, ComponentKind::kProcessor, {c.input}, {c.output}, c.reader.empty() ? c.name : c.reader});
  for (const auto& e : p.exporters)
    out.push_back(ComponentInfo{e.name, ComponentKind::kExporter, {e.input}, {}, e.reader.empty() ? e.name : e.reader});
  return out;
}

const ComponentInfo* find_component(const std::vector<ComponentInfo>& all, std::string_view name) noexcept {
  for (const auto& c : all)
    if (c.name == name) return &c;
  return nullptr;
}

std::uint32_t lanes_needed(const config::PipelineConfig& p, std::string_view ring) {
  std::uint32_t n = 0;
  for (const auto& s : p.sources)
    if (s.output == ring) n += source_lanes(s);
  for (const auto& c : p.processors)
    if (c.output == ring) n += c.shards;
  return n;
}

ring::RingOptions ring_options(const config::PipelineConfig& p, const config::RingConfig& r) {
  ring::RingOptions o;
  o.lane_capacity_bytes = r.lane_capacity_bytes();
  o.lanes = std::max(r.lanes, lanes_needed(p, r.name));
  o.max_readers = r.max_readers;
  o.overflow = overflow_of(r.overflow);
  o.max_record_bytes = r.max_record_bytes;
  o.reader_timeout = r.reader_timeout;
  return o;
}

std::string stats_segment_path(const config::PipelineConfig& p, std::string_view component) {
  return p.ring_path(component) + std::string(stats::kStatsFileSuffix);
}

ingest::MqttConfig mqtt_config(const config::PipelineConfig& p, const config::SourceConfig& s) {
  const config::MqttSourceConfig& m = s.mqtt;
  ingest::MqttConfig c;
  c.name = s.name;
  c.source_id = source_id_of(p, s);
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
    case config::MqttPayloadFormat::kInflux: c.payload = ingest::MqttPayload::kInflux; break;
    case config::MqttPayloadFormat::kJson: c.payload = ingest::MqttPayload::kJson; break;
    case config::MqttPayloadFormat::kValue: c.payload = ingest::MqttPayload::kValue; break;
  }
  c.topic_template = m.topic_template;
  c.metric_name = s.json.name;
  c.kind = s.json.counter ? sample::Kind::kCounter : sample::Kind::kGauge;
  c.parser.json = json_options(s);
  c.max_message_bytes = m.max_message_bytes;
  return c;
}

Result<ingest::RemoteWriteConfig> remote_write_config(const config::PipelineConfig& p, const config::SourceConfig& s) {
  ingest::RemoteWriteConfig c;
  c.name = s.name;
  c.source_id = source_id_of(p, s);
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

ingest::PromScrapeConfig scrape_config(const config::PipelineConfig& p, const config::SourceConfig& s) {
  const config::ScrapeSourceConfig& m = s.scrape;
  ingest::PromScrapeConfig c;
  c.name = s.name;
  c.job = m.job;
  c.source_id = source_id_of(p, s);
  c.targets = m.targets;
  c.interval = m.interval;
  c.timeout = m.timeout;
  c.max_body_bytes = m.max_body_bytes;
  c.max_labels = m.max_labels;
  c.max_line_bytes = s.max_line_length;
  c.honor_labels = m.honor_labels;
  return c;
}

Result<std::vector<ingest::IngestConfig>> ingest_configs(const config::PipelineConfig& p, const config::SourceConfig& s) {
  ingest::IngestConfig base;
  base.name = s.name;
  base.source_id = source_id_of(p, s);
  base.parser.protocol = protocol_of(s.type);
  base.parser.statsd.dogstatsd_tags = s.tags.dogstatsd;
  base.parser.statsd.influxdb_tags = s.tags.influxdb;
  base.parser.statsd.librato_tags = s.tags.librato;
  base.parser.statsd.signalfx_tags = s.tags.signalfx;
  base.parser.json = json_options(s);

  std::vector<ingest::IngestConfig> out;
  std::size_t udp = 0, tcp = 0, unixgram = 0, unix_stream = 0;
  auto slot = [&](std::size_t& counter) -> ingest::IngestConfig& {
    if (counter == out.size()) out.push_back(base);
    return out[counter++];
  };
  for (const config::ListenAddress& a : s.listen) {
    switch (a.transport) {
      case config::Transport::kUdp: {
        auto host = numeric_host(a.host);
        if (!host) return tl::unexpected(Error{host.error().code, "listen " + a.to_string() + ": " + host.error().context});
        ingest::UdpConfig u;
        u.address = *host;
        u.port = a.port;
        u.sockets = s.udp_sockets;
        u.receive_buffer_bytes = static_cast<std::uint32_t>(std::min<std::uint64_t>(s.read_buffer_bytes, UINT32_MAX));
        slot(udp).udp = u;
        break;
      }
      case config::Transport::kTcp: {
        auto host = numeric_host(a.host);
        if (!host) return tl::unexpected(Error{host.error().code, "listen " + a.to_string() + ": " + host.error().context});
        ingest::TcpConfig t;
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
        ingest::UnixDatagramConfig u;
        u.path = a.path;
        u.mode = s.socket_mode;
        u.receive_buffer_bytes = static_cast<std::uint32_t>(std::min<std::uint64_t>(s.read_buffer_bytes, UINT32_MAX));
        slot(unixgram).unix_datagram = u;
        break;
      }
      case config::Transport::kUnix: {
        ingest::UnixStreamConfig u;
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

processors::ProcessorOptions processor_options(const config::PipelineConfig& p, const config::ProcessorConfig& c) {
  processors::ProcessorOptions o;
  if (c.mapping) {
    o.engine.mapping = processors::mapping_from_config(*c.mapping, c.mapping_cache);
    // The processor's ttl applies where the mapping file sets none.
    if (o.engine.mapping.defaults.ttl.count() == 0) o.engine.mapping.defaults.ttl = c.ttl;
  } else {
    processors::MappingDefaults& d = o.engine.mapping.defaults;
    d.observer_type = c.observer_type == config::ObserverType::kHistogram ? processors::ObserverType::kHistogram
                                                                           : processors::ObserverType::kSummary;
    d.ttl = c.ttl;
    if (!c.histogram.buckets.empty()) d.buckets = c.histogram.buckets;
    if (!c.summary.quantiles.empty()) {
      d.quantiles.clear();
      for (const auto& q : c.summary.quantiles) d.quantiles.push_back(processors::QuantileSpec{q.quantile, q.error});
    }
    if (c.summary.max_age.count() > 0) d.max_age = c.summary.max_age;
    if (c.summary.age_buckets > 0) d.age_buckets = c.summary.age_buckets;
    o.engine.mapping.cache_size = c.mapping_cache.size;
  }
  o.engine.shards = c.shards;
  o.engine.max_series = c.max_series == 0 ? SIZE_MAX : c.max_series;
  o.engine.max_series_per_metric = c.max_series_per_metric == 0 ? SIZE_MAX : c.max_series_per_metric;
  o.engine.max_families = static_cast<std::size_t>(c.max_metrics);
  o.engine.max_name_bytes = static_cast<std::size_t>(c.max_name_length);
  o.quarantine_after_crashes = c.quarantine_after_crashes;
  if (const config::RingConfig* out = p.find_ring(c.output)) {
    const ring::RingOptions ro = ring_options(p, *out);
    const std::uint64_t ring_max = ro.max_record_bytes ? ro.max_record_bytes : ro.lane_capacity_bytes / 4;
    o.engine.max_record_bytes = static_cast<std::size_t>(std::min<std::uint64_t>(o.engine.max_record_bytes, ring_max));
  }
  o.inputs = {p.ring_path(c.input)};
  o.reader_name = c.reader.empty() ? c.name : c.reader;
  o.output = p.ring_path(c.output);
  o.flush_interval = c.flush_interval;
  if (c.state) o.state_dir = processor_state_dir(p, c);
  return o;
}

std::string processor_state_dir(const config::PipelineConfig& p, const config::ProcessorConfig& c) {
  return c.state_dir.empty() ? p.ring_path(c.name + ".state") : c.state_dir;
}

std::string component_fingerprint(const config::PipelineConfig& p, std::string_view name) {
  for (const auto& s : p.sources)
    if (s.name == name) return source_fingerprint(p, s);
  for (const auto& c : p.processors)
    if (c.name == name) return processor_fingerprint(p, c);
  for (const auto& e : p.exporters)
    if (e.name == name) return exporter_fingerprint(p, e);
  return {};
}

Result<std::vector<ring::Ring>> open_rings(const config::PipelineConfig& p) {
  std::vector<ring::Ring> rings;
  for (const config::RingConfig& r : p.rings) {
    auto ring = ring::Ring::open_or_create(p.ring_path(r.name), ring_options(p, r));
    if (!ring) return tl::unexpected(Error{ring.error().code, "open ring " + r.name + ": " + ring.error().context});
    rings.push_back(std::move(*ring));
  }
  return rings;
}

int run_component(const config::PipelineConfig& p, std::string_view name) {
  const sigset_t signals = stop_signals();
  ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  for (const auto& s : p.sources)
    if (s.name == name) return run_source(p, s, signals);
  for (const auto& c : p.processors)
    if (c.name == name) return run_processor(p, c, signals);
  for (const auto& e : p.exporters)
    if (e.name == name) return run_exporter(p, e, signals);
  spdlog::error("component {}: no source, processor or exporter of pipeline {} has that name", name, p.pipeline);
  return kExitConfig;
}

}  // namespace ringpipe::apps
