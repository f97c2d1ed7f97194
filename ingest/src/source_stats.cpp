#include "source_stats.hpp"

#include <string>
#include <utility>

namespace ringpipe::ingest {

namespace {

// A label value holds at most kStatsMaxLabelValueBytes; long socket paths keep their end.
std::string socket_label(std::string s) {
  if (s.size() > stats::kStatsMaxLabelValueBytes)
    s = "..." + s.substr(s.size() - (stats::kStatsMaxLabelValueBytes - 3));
  return s;
}

}  // namespace

Result<std::unique_ptr<stats::Publisher>> create_source_publisher(std::shared_ptr<stats::StatsSegment> segment,
                                                                  const IngestConfig& config, const IngestStats& stats,
                                                                  std::uint16_t udp_port) {
  auto p = std::make_unique<stats::Publisher>(std::move(segment));
  Status failed;
  auto counter = [&](const std::atomic<std::uint64_t>& from, std::string_view name, std::string_view help,
                     const stats::StatsLabels& labels = {}) {
    if (failed) failed = p->add_counter(from, name, help, labels);
  };
  auto gauge = [&](const std::atomic<std::uint64_t>& from, std::string_view name, std::string_view help,
                   const stats::StatsLabels& labels) {
    if (failed) failed = p->add_gauge(from, name, help, labels);
  };

  counter(stats.lines, "source_lines_total", "Lines (or datagram lines) parsed.");
  counter(stats.samples, "source_samples_total", "Samples parsed.");
  counter(stats.samples_written, "source_samples_written_total", "Samples written into the ring.");
  counter(stats.samples_dropped, "source_ring_dropped_samples_total",
          "Samples lost because the ring refused the claim (full or timed out).");
  counter(stats.samples_too_large, "source_samples_too_large_total", "Samples larger than one ring record.");
  counter(stats.records_written, "source_records_written_total", "Ring records (sample batches) written.");
  counter(stats.records_dropped, "source_ring_dropped_records_total", "Ring claims refused with samples waiting.");
  counter(stats.skipped_fields, "source_skipped_fields_total", "Fields or tags skipped while the sample was kept.");
  for (std::size_t i = 0; i < kParseErrorCount; ++i) {
    counter(stats.parse_errors[i], "source_parse_errors_total", "Input refused by the parser, by reason.",
            {{"reason", std::string(parse_error_name(static_cast<ParseError>(i)))}});
  }
  if (!config.relabel.empty()) {
    counter(stats.relabel_dropped, "source_relabel_dropped_samples_total",
            "Samples relabel_configs dropped, by reason (drop: a keep/drop rule; invalid_name: no valid name left).",
            {{"reason", "drop"}});
    counter(stats.relabel_invalid_name, "source_relabel_dropped_samples_total",
            "Samples relabel_configs dropped, by reason (drop: a keep/drop rule; invalid_name: no valid name left).",
            {{"reason", "invalid_name"}});
  }
  if (config.udp || config.unix_datagram) {
    counter(stats.udp_bytes, "source_datagram_bytes_total", "Bytes of datagrams received (UDP and unixgram).");
    counter(stats.udp_truncated, "source_datagrams_truncated_total", "Datagrams larger than the buffer, truncated.");
  }
  if (config.udp) {
    counter(stats.udp_packets, "source_datagrams_total", "Datagrams received.", {{"transport", "udp"}});
    const std::string endpoint = config.udp->address + ":" + std::to_string(udp_port);
    for (std::uint32_t i = 0; i < config.udp->sockets && i < kMaxUdpSockets; ++i) {
      counter(stats.udp_kernel_drops[i], "source_kernel_drops_total",
              "Datagrams the kernel dropped on a full socket buffer (SO_RXQ_OVFL).",
              {{"socket", socket_label("udp " + endpoint + " #" + std::to_string(i))}});
    }
  }
  if (config.unix_datagram) {
    counter(stats.unix_datagram_packets, "source_datagrams_total", "Datagrams received.", {{"transport", "unixgram"}});
    counter(stats.unix_datagram_kernel_drops, "source_kernel_drops_total",
            "Datagrams the kernel dropped on a full socket buffer (SO_RXQ_OVFL).",
            {{"socket", socket_label("unixgram " + config.unix_datagram->path)}});
  }
  auto stream = [&](const StreamStats& s, std::string_view transport) {
    const stats::StatsLabels t{{"transport", std::string(transport)}};
    counter(s.connections, "source_connections_total", "Stream connections accepted.", t);
    gauge(s.connections_open, "source_connections_open", "Stream connections open now.", t);
    counter(s.connections_rejected, "source_connections_rejected_total", "Connections closed over max_connections.", t);
    counter(s.idle_closed, "source_connections_idle_closed_total", "Connections closed after the idle timeout.", t);
    counter(s.buffer_closed, "source_connections_buffer_closed_total",
            "Connections closed because their partial line would pass max_buffered_bytes.", t);
    gauge(s.buffered_bytes, "source_stream_buffered_bytes",
          "Partial-line buffer bytes held beyond the first read chunk of each connection.", t);
    counter(s.read_errors, "source_read_errors_total", "Stream read errors.", t);
    counter(s.accept_errors, "source_accept_errors_total", "Failed accepts (each retried after a backoff).", t);
    counter(s.bytes, "source_stream_bytes_total", "Bytes read from stream connections.", t);
  };
  if (config.tcp) stream(stats.tcp, "tcp");
  if (config.unix_stream) stream(stats.unix_stream, "unix");
  if (!failed) return tl::unexpected(failed.error());
  p->publish();
  return p;
}

Result<std::unique_ptr<stats::Publisher>> open_source_publisher(std::shared_ptr<stats::StatsSegment> segment,
                                                                const std::string& stats_path,
                                                                const IngestConfig& config, const IngestStats& stats,
                                                                const std::string& what) {
  if (!segment && !stats_path.empty()) {
    auto created = stats::StatsSegment::create(stats_path, config.name, "source");
    if (!created) return tl::unexpected(Error{created.error().code, what + ": " + created.error().context});
    created->reset_gauges();
    segment = std::make_shared<stats::StatsSegment>(std::move(*created));
  }
  if (!segment) return std::unique_ptr<stats::Publisher>();
  auto p = create_source_publisher(std::move(segment), config, stats, 0);
  if (!p) return tl::unexpected(Error{p.error().code, what + ": stats: " + p.error().context});
  return p;
}

}  // namespace ringpipe::ingest
