#include "components.hpp"

#include <unistd.h>

#include <algorithm>
#include <memory>
#include <type_traits>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "component_runner.hpp"
#include "ringpipe/exporters/config_adapter.hpp"
#include "ringpipe/ingest/config_adapter.hpp"
#include "ringpipe/ingest/ring_target.hpp"
#include "ringpipe/processors/config_adapter.hpp"
#include "ringpipe/processors/processor_stats.hpp"
#include "ringpipe/stats/stats_segment.hpp"

namespace ringpipe::apps {
namespace {

// How often processors and exporters copy their counters into their stats segment.
constexpr std::chrono::milliseconds kStatsPublishInterval{200};

ring::Overflow overflow_of(config::OverflowPolicy p) {
  switch (p) {
    case config::OverflowPolicy::kBlock:
      return ring::Overflow::kBlock;
    case config::OverflowPolicy::kDrop:
      return ring::Overflow::kDrop;
    case config::OverflowPolicy::kOverwrite:
      return ring::Overflow::kOverwrite;
  }
  return ring::Overflow::kBlock;
}

// The pipeline's options for ring `name`, opened or created.
tl::expected<ring::Ring, BuildError> open_ring(const config::PipelineConfig& p, const std::string& name) {
  auto ring = ring::Ring::open_or_create(p.ring_path(name), ring_options(p, *p.find_ring(name)));
  if (!ring) return build_error("open ring " + name + ": " + ring.error().message());
  return std::move(*ring);
}

// A source's servers, all writing into its output ring: one per listener
// group of a listening source, the one client or server of the others.
template <class Server>
class SourceServers final : public Runnable {
 public:
  SourceServers(ring::Ring ring, std::string doing, std::string output)
      : ring_(std::move(ring)), doing_(std::move(doing)), output_(std::move(output)) {}

  const ring::Ring& ring() const noexcept { return ring_; }
  void add(std::unique_ptr<Server> server) { servers_.push_back(std::move(server)); }

  Status start() override {
    for (auto& server : servers_) {
      if (auto st = server->start(); !st) {
        stop();
        return st;
      }
    }
    return {};
  }
  void stop() override {
    for (auto& server : servers_) server->stop();
  }
  std::string running() const override { return doing_ + ", writing to ring " + output_; }
  std::string stopped() const override {
    std::uint64_t written = 0, dropped = 0;
    for (const auto& server : servers_) {
      written += server->stats().samples_written.load(std::memory_order_relaxed);
      dropped += server->stats().samples_dropped.load(std::memory_order_relaxed);
    }
    return fmt::format("stopped ({} samples written, {} dropped)", written, dropped);
  }

 private:
  ring::Ring ring_;  // outlives the servers, whose targets write into it
  std::string doing_;
  std::string output_;
  std::vector<std::unique_ptr<Server>> servers_;
};

template <class Server, class Config>
Built build_servers(const config::PipelineConfig& p, const config::SourceConfig& s, std::vector<Config> configs,
                    std::string doing, const ListenFds& listen_fds = {}) {
  auto ring = open_ring(p, s.output);
  if (!ring) return tl::unexpected(ring.error());
  auto source = std::make_unique<SourceServers<Server>>(std::move(*ring), std::move(doing), s.output);
  if constexpr (std::is_same_v<Server, ingest::IngestServer>) {
    // One stats segment per source process; its servers sum into it.
    auto stats = stats::StatsSegment::create(stats_segment_path(p, s.name), s.name, "source");
    if (!stats) return build_error(stats.error().message());
    stats->reset_gauges();
    auto segment = std::make_shared<stats::StatsSegment>(std::move(*stats));
    for (Config& c : configs) {
      c.stats_segment = segment;
      // The sockets `ringpipe run` bound for this server ("statsd/udp0", ...).
      const std::string prefix = c.name + "/";
      for (const auto& [key, fd] : listen_fds)
        if (key.rfind(prefix, 0) == 0) c.listen_fds.emplace(key, fd);
    }
  } else {
    for (Config& c : configs) c.stats_path = stats_segment_path(p, s.name);
  }
  ingest::RingTargetOptions target;
  target.claim_timeout = s.write_timeout;
  for (const Config& c : configs) {
    auto server = Server::create(c, ingest::ring_target_factory(source->ring(), target));
    if (!server) return build_error(server.error().message());
    source->add(std::move(*server));
  }
  return source;
}

Built build_source(const config::PipelineConfig& p, const config::SourceConfig& s, const ListenFds& listen_fds) {
  switch (s.type) {
    case config::SourceType::kMqtt:
      return build_servers<ingest::MqttSource>(p, s, std::vector{ingest::mqtt_config(p, s)},
                                               "subscribing at " + s.mqtt.broker);
    case config::SourceType::kRemoteWrite: {
      auto c = ingest::remote_write_config(p, s);
      if (!c) return config_error(c.error().message());
      std::string doing = fmt::format("receiving remote_write on http://{}:{}{}", c->address, c->port, c->path);
      return build_servers<ingest::RemoteWriteSource>(p, s, std::vector{std::move(*c)}, std::move(doing));
    }
    case config::SourceType::kPrometheusScrape:
      return build_servers<ingest::PromScrapeSource>(
          p, s, std::vector{ingest::scrape_config(p, s)},
          fmt::format("scraping {} every {} ms", fmt::join(s.scrape.targets, ", "), s.scrape.interval.count()));
    default: {
      auto configs = ingest::ingest_configs(p, s);
      if (!configs) return config_error(configs.error().message());
      return build_servers<ingest::IngestServer>(
          p, s, std::move(*configs), listen_fds.empty() ? "running" : "running on sockets from ringpipe run",
          listen_fds);
    }
  }
}

// The processor and the publisher that mirrors its counters into its stats segment.
class ProcessorRun final : public Runnable {
 public:
  ProcessorRun(const config::ProcessorConfig& c, std::unique_ptr<processors::Processor> processor,
               stats::StatsSegment segment)
      : input_(c.input), output_(c.output), processor_(std::move(processor)), segment_(std::move(segment)) {}

  // Registers the processor's metrics in its segment; fails "stats segment PATH: cause".
  Status publish_stats(const processors::EngineOptions& engine) {
    auto publisher = processors::create_processor_publisher(segment_, *processor_, engine);
    if (!publisher)
      return tl::unexpected(Error{{}, "stats segment " + segment_.path() + ": " + publisher.error().message()});
    publisher_ = std::move(*publisher);
    return {};
  }

  Status start() override {
    if (auto st = processor_->start(); !st) return st;
    if (auto st = publisher_->start(kStatsPublishInterval); !st) {
      processor_->stop();
      return st;
    }
    return {};
  }
  void stop() override {
    processor_->stop();
    publisher_->stop();
  }
  std::string running() const override { return fmt::format("running, {} -> {}", input_, output_); }
  std::string stopped() const override {
    const processors::EngineStats st = processor_->stats();
    return fmt::format("stopped ({} samples, {} series, {} flushes)", st.samples, st.series_live, st.flushes);
  }

 private:
  std::string input_, output_;
  std::unique_ptr<processors::Processor> processor_;
  stats::StatsSegment segment_;  // outlives the publisher, which writes into it
  std::unique_ptr<stats::Publisher> publisher_;
};

Built build_processor(const config::PipelineConfig& p, const config::ProcessorConfig& c) {
  for (const std::string& name : {c.input, c.output})
    if (auto ring = open_ring(p, name); !ring) return tl::unexpected(ring.error());
  const processors::ProcessorOptions options = processors::processor_options(p, c);
  auto processor = processors::Processor::create(options);
  if (!processor) return build_error(processor.error().message());
  auto segment = stats::StatsSegment::create(stats_segment_path(p, c.name), c.name, "processor");
  if (!segment) return build_error(segment.error().message());
  segment->reset_gauges();
  auto run = std::make_unique<ProcessorRun>(c, std::move(*processor), std::move(*segment));
  if (auto st = run->publish_stats(options.engine); !st) return build_error(st.error().message());
  return run;
}

// Either exporter, with its input ring held open while it runs.
template <class Exporter>
class ExporterRun final : public Runnable {
 public:
  ExporterRun(ring::Ring ring, std::unique_ptr<Exporter> exporter, std::string input)
      : ring_(std::move(ring)), exporter_(std::move(exporter)), input_(std::move(input)) {}

  Status start() override { return exporter_->start(); }
  void stop() override { exporter_->stop(); }
  std::string running() const override { return "running, reading ring " + input_; }
  std::string stopped() const override { return "stopped"; }

 private:
  ring::Ring ring_;
  std::unique_ptr<Exporter> exporter_;
  std::string input_;
};

template <class Exporter, class Options>
Built build_exporter(const config::ExporterConfig& e, ring::Ring ring, Result<Options> options) {
  if (!options) return config_error(options.error().message());
  auto exporter = Exporter::create(std::move(*options));
  if (!exporter) return build_error(exporter.error().message());
  return std::make_unique<ExporterRun<Exporter>>(std::move(ring), std::move(*exporter), e.input);
}

Built build_exporter(const config::PipelineConfig& p, const config::ExporterConfig& e) {
  auto ring = open_ring(p, e.input);
  if (!ring) return tl::unexpected(ring.error());
  if (e.type == config::ExporterType::kPrometheus)
    return build_exporter<exporters::PrometheusExporter>(e, std::move(*ring), exporters::prometheus_options(p, e));
  return build_exporter<exporters::RemoteWriteExporter>(e, std::move(*ring), exporters::remote_write_options(p, e));
}

}  // namespace

std::vector<ComponentInfo> pipeline_components(const config::PipelineConfig& p) {
  std::vector<ComponentInfo> out;
  for (const auto& s : p.sources) out.push_back(ComponentInfo{s.name, ComponentKind::kSource, {}, {s.output}, ""});
  for (const auto& c : p.processors)
    out.push_back(
        ComponentInfo{c.name, ComponentKind::kProcessor, {c.input}, {c.output}, c.reader.empty() ? c.name : c.reader});
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
    if (s.output == ring) n += ingest::source_lanes(s);
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

bool listening_source(const config::SourceConfig& s) noexcept {
  return s.type != config::SourceType::kMqtt && s.type != config::SourceType::kRemoteWrite &&
         s.type != config::SourceType::kPrometheusScrape;
}

Result<std::vector<ingest::ListenSocket>> bind_source_sockets(const config::PipelineConfig& p,
                                                              const config::SourceConfig& s) {
  std::vector<ingest::ListenSocket> out;
  if (!listening_source(s)) return out;
  auto configs = ingest::ingest_configs(p, s);
  if (!configs) return tl::unexpected(Error{configs.error().code, "source " + s.name + ": " + configs.error().context});
  for (const ingest::IngestConfig& c : *configs) {
    auto bound = ingest::bind_listen_sockets(c);
    if (!bound) return tl::unexpected(bound.error());
    for (ingest::ListenSocket& l : *bound) out.push_back(std::move(l));
  }
  return out;
}

int run_component(const config::PipelineConfig& p, std::string_view name, const ListenFds& listen_fds) {
  for (const auto& s : p.sources)
    if (s.name == name)
      return run_until_stopped(ComponentKind::kSource, name, [&] { return build_source(p, s, listen_fds); });
  for (const auto& c : p.processors)
    if (c.name == name)
      return run_until_stopped(ComponentKind::kProcessor, name, [&] { return build_processor(p, c); });
  for (const auto& e : p.exporters)
    if (e.name == name) return run_until_stopped(ComponentKind::kExporter, name, [&] { return build_exporter(p, e); });
  for (const auto& [key, fd] : listen_fds) ::close(fd);
  spdlog::error("component {}: no source, processor or exporter of pipeline {} has that name", name, p.pipeline);
  return kExitConfig;
}

}  // namespace ringpipe::apps
