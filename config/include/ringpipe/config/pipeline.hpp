#pragma once
// The pipeline file: rings, and the sources, processors and exporters wired
// to them by ring name. config/examples/ holds complete files; in short:
//
//   pipeline: edge                  # rings live under <run_dir>/<pipeline>/
//   run_dir: /dev/shm/ringpipe
//   rings:      {raw: {size: 64MiB, overflow: block}, metrics: {size: 16MiB}}
//   sources:    {statsd: {type: statsd, listen: [udp://0.0.0.0:9125], output: raw}}
//   processors: {aggregate: {type: aggregate, input: raw, output: metrics, mapping_config: mapping.yml}}
//   exporters:  {prometheus: {type: prometheus, input: metrics, listen: 0.0.0.0:9102}}
//
// Sizes take units (64MiB, 512KiB, 1GiB; kB/MB/GB are decimal; a bare number
// is bytes), durations take units (500ms, 10s, 5m, 1h, 1m30s), and
// ${VAR} / ${VAR:-default} are expanded from the environment in every value,
// never in keys or comments ($${ is a literal "${"). Unknown keys, wrong
// types, dangling or unused rings, clashing ports and bad mapping files are
// all errors, reported together, each as "file:line:column: found ...,
// expected ...".
//
// Every type here is plain data, filled in by the loaders below: safe to
// share read-only between threads. Loading never throws. Values compare with
// ==, which is what a reload compares: everything a component would do
// differently (mapping rules as loaded, TLS files' contents) takes part,
// where a value was written (WrittenAt) does not.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringpipe/config/diagnostic.hpp"
#include "ringpipe/config/mapping.hpp"
#include "ringpipe/relabel/relabel.hpp"

namespace ringpipe::config {

inline constexpr std::string_view kDefaultRunDir = "/dev/shm/ringpipe";
inline constexpr std::uint16_t kStatsdDefaultPort = 9125;
inline constexpr std::uint16_t kPrometheusDefaultPort = 9102;

// ---------------------------------------------------------------- rings

// A ring's overflow policy (mirrors ring::Overflow; config does not depend on ring).
enum class OverflowPolicy : std::uint8_t {
  kBlock,      // "block": producers wait for the slowest live reader; nothing is lost
  kDrop,       // "drop": a record that does not fit is refused and counted
  kOverwrite,  // "overwrite": the oldest data is reused; lapped readers skip and count
};

// One shared-memory ring. Numbers map 1:1 onto ring::RingOptions, with
// lane_capacity_bytes = size_bytes / lanes (validated: a power of two >= 4 KiB).
struct RingConfig {
  std::string name;
  std::uint64_t size_bytes = 64ull << 20;  // `size`: data bytes, all lanes together
  OverflowPolicy overflow = OverflowPolicy::kBlock;
  std::uint32_t lanes = 8;                         // `lanes`: producers attached at once, 1..256
  std::uint32_t max_readers = 16;                  // `max_readers`: 1..64
  std::uint32_t max_record_bytes = 0;              // `max_record`: 0 = lane capacity / 4
  std::chrono::milliseconds reader_timeout{2000};  // `reader_timeout`: a dead reader gates this long
  WrittenAt position;

  [[nodiscard]] std::uint64_t lane_capacity_bytes() const noexcept { return lanes ? size_bytes / lanes : 0; }
  friend bool operator==(const RingConfig&, const RingConfig&) = default;
};

// ---------------------------------------------------------------- addresses

// The socket kind of a listen address.
enum class Transport : std::uint8_t {
  kUdp,       // udp://host:port
  kTcp,       // tcp://host:port (also a bare host:port where TCP is implied)
  kUnix,      // unix:///path   (stream socket)
  kUnixgram,  // unixgram:///path (datagram socket; statsd_exporter's --statsd.listen-unixgram)
};
[[nodiscard]] std::string_view transport_name(Transport t) noexcept;

// A listening socket. host "" means every interface (IPv4 and IPv6), like Go's ":9125".
struct ListenAddress {
  Transport transport = Transport::kUdp;
  std::string host;        // IPv4, IPv6 (without brackets) or a name; udp/tcp only
  std::uint16_t port = 0;  // udp/tcp only; 0 = any free port (tests)
  std::string path;        // unix/unixgram only
  WrittenAt position;

  // Canonical text: "udp://0.0.0.0:9125", "tcp://[::1]:80", "unix:///run/x.sock".
  [[nodiscard]] std::string to_string() const;
  friend bool operator==(const ListenAddress&, const ListenAddress&) = default;
};

// Parses "udp://h:p", "tcp://h:p", "unix:///p", "unixgram:///p". With
// `implied` set, a bare "host:port" or ":port" is accepted with that transport.
// Returns what was wrong on failure (no position; the caller adds it).
[[nodiscard]] tl::expected<ListenAddress, std::string> parse_listen_address(
    std::string_view text, std::optional<Transport> implied = std::nullopt);

// ---------------------------------------------------------------- sources

// What a source receives: `type: statsd | influx | graphite | json` on its
// listen addresses, `mqtt` (a client of an MQTT broker), `prometheus_scrape`
// (a client scraping Prometheus endpoints) or `remote_write` (an HTTP server
// taking Prometheus remote_write 1.0 on one TCP address).
enum class SourceType : std::uint8_t { kStatsd, kInflux, kGraphite, kJson, kMqtt, kRemoteWrite, kPrometheusScrape };
[[nodiscard]] std::string_view source_type_name(SourceType t) noexcept;

// Which tag syntaxes a StatsD source parses (statsd_exporter's
// --[no-]statsd.parse-*-tags); all on by default.
struct StatsdTagFlavors {
  bool dogstatsd = true;  // name:1|c|#k:v,k2:v2
  bool influxdb = true;   // name,k=v,k2=v2:1|c
  bool librato = true;    // name#k=v,k2=v2:1|c
  bool signalfx = true;   // name[k=v,k2=v2]:1|c
  friend bool operator==(const StatsdTagFlavors&, const StatsdTagFlavors&) = default;
};

// Units of a JSON timestamp field: `timestamp_precision: s | ms | us | ns`.
enum class TimestampPrecision : std::uint8_t { kSeconds, kMilliseconds, kMicroseconds, kNanoseconds };

// How a JSON object becomes one sample (`type: json`): the value field, the
// name field or a fixed name, an optional timestamp field; every other scalar
// field is a label.
struct JsonMapping {
  std::string value_field = "value";  // `value_field`
  std::string name_field = "name";    // `name_field` (exclusive with `name`)
  std::string name;                   // `name`: one fixed metric name; "" = read name_field
  std::string timestamp_field;        // `timestamp_field`: "" = the receive time
  TimestampPrecision timestamp_precision = TimestampPrecision::kSeconds;  // `timestamp_precision`
  bool counter = false;                                                   // `kind: gauge | counter`
  std::uint32_t max_labels = 64;  // `max_labels`: 0..64; further labels are skipped and counted
  friend bool operator==(const JsonMapping&, const JsonMapping&) = default;
};

// What an MQTT message's payload is: `payload: influx | json | value` (a bare number).
enum class MqttPayloadFormat : std::uint8_t { kInflux, kJson, kValue };

// `type: mqtt`: the broker, the subscriptions and how topics and payloads become samples.
struct MqttSourceConfig {
  std::string broker;                        // `broker`: mqtt://host:port or mqtts://host:port (as written)
  std::string host;                          // from broker
  std::uint16_t port = 1883;                 // from broker; default 1883, 8883 for mqtts
  bool tls = false;                          // mqtts://
  std::string ca_file, cert_file, key_file;  // `ca_file`, `cert_file`, `key_file` (mqtts only)
  std::string username, password;            // `username`, `password`
  std::string client_id;                     // `client_id`: "" = ringpipe-<name>-<pid>
  std::vector<std::string> topics;           // `topics`: subscription filters, at least one
  std::uint32_t qos = 0;                     // `qos`: 0 or 1
  MqttPayloadFormat payload = MqttPayloadFormat::kValue;  // `payload`
  std::string topic_template;                             // `topic_template`: e.g. sensors/+site/+device/+name
  std::uint32_t max_message_bytes = 65536;                // `max_message_size`: larger payloads are dropped and counted
  friend bool operator==(const MqttSourceConfig&, const MqttSourceConfig&) = default;
};

// `type: remote_write`: the HTTP endpoint Prometheus (or any remote_write 1.0
// sender) POSTs to. Connections use max_connections and idle_timeout.
struct RemoteWriteSourceConfig {
  std::string path = "/api/v1/write";        // `path`
  std::uint64_t max_body_bytes = 10u << 20;  // `max_body_size`: larger bodies are answered 413 and counted
  std::uint32_t max_labels = 64;  // `max_labels`: 1..64 per series (__name__ not counted); more: series refused
  // Decoded objects per request; over any of them the request is answered
  // 413 and nothing of it is written: `max_series_per_request`,
  // `max_labels_per_request` (label fields, all series together),
  // `max_samples_per_request`.
  std::uint64_t max_series_per_request = 100'000;
  std::uint64_t max_labels_per_request = 2'000'000;
  std::uint64_t max_samples_per_request = 1'000'000;
  // `max_inflight_body_size`: bodies read at once may declare at most this
  // many bytes together; a request over it is answered 503 (Retry-After).
  std::uint64_t max_inflight_body_bytes = 64u << 20;
  friend bool operator==(const RemoteWriteSourceConfig&, const RemoteWriteSourceConfig&) = default;
};

// `type: prometheus_scrape`: the targets, how often and how long to scrape them.
struct ScrapeSourceConfig {
  std::vector<std::string> targets;            // `targets`: http://host:port/path, at least one
  std::chrono::milliseconds interval{15'000};  // `interval`
  std::chrono::milliseconds timeout{10'000};   // `timeout`: at most interval
  std::uint64_t max_body_bytes = 16u << 20;    // `max_body_size`: larger responses fail the scrape
  std::uint32_t max_labels = 64;               // `max_labels`: 1..64 scraped labels; more drop the series
  bool honor_labels = false;                   // `honor_labels`: scraped job/instance win over the target's
  std::string job;                             // `job`: the job label; "" = the source's name
  friend bool operator==(const ScrapeSourceConfig&, const ScrapeSourceConfig&) = default;
};

// Longest max_line_length a json source takes (its parser holds memory for one such line).
inline constexpr std::uint32_t kMaxJsonLineLength = 1u << 20;

// An ingest process: listens, parses, writes sample batches into `output`.
struct SourceConfig {
  std::string name;
  SourceType type = SourceType::kStatsd;
  std::vector<ListenAddress> listen;     // `listen`: at least one
  std::string output;                    // `output`: ring name
  StatsdTagFlavors tags;                 // `tags`: statsd only
  JsonMapping json;                      // json, and mqtt with payload json (name, kind also for value)
  MqttSourceConfig mqtt;                 // mqtt only
  RemoteWriteSourceConfig remote_write;  // remote_write only
  ScrapeSourceConfig scrape;             // prometheus_scrape only
  // `read_buffer`: SO_RCVBUF for udp/unixgram; 0 = OS default. 32 MiB by
  // default: the OS default (about 208 KiB) drops bursts a busy machine
  // cannot drain at once (SO_RCVBUFFORCE as root, else capped by rmem_max).
  // The kernel holds that memory only while a backlog waits: a million new
  // series at 1M lines/s keep the processor busy ~1 s creating them, and
  // 8 MiB (~130k lines of 20-line packets) lost 14 % of that first second.
  std::uint64_t read_buffer_bytes = 32u << 20;
  std::uint32_t udp_sockets = 1;          // `udp_sockets`: SO_REUSEPORT sockets per UDP address, 1..256
  std::uint32_t max_line_length = 65536;  // `max_line_length`: longer TCP/unix lines are dropped and counted
  std::uint32_t max_connections = 1024;   // `max_connections`: TCP/unix stream connections at once
  // `max_buffered_size`: partial lines all stream connections of one listener
  // hold together; a connection whose line would pass it is closed and counted.
  std::uint64_t max_buffered_bytes = 64u << 20;
  std::chrono::milliseconds idle_timeout{300'000};  // `idle_timeout`: close a silent stream connection; 0 = never
  std::uint32_t socket_mode = 0755;                 // `socket_mode`: unix socket permissions (octal "0660")
  // `write_timeout`: under `block`, how long a full ring may stall ingest
  // before the batch is dropped and counted.
  std::chrono::milliseconds write_timeout{1000};
  // `relabel_configs`: Prometheus' relabeling of each sample (its name as
  // `__name__`, its tags as labels) after parsing, before the ring; compiled
  // at load. A sample it drops, or whose name it empties, is counted.
  relabel::Rules relabel;
  WrittenAt position;
  friend bool operator==(const SourceConfig&, const SourceConfig&) = default;
};

// ---------------------------------------------------------------- processors

// What a processor does: `type: aggregate` (series aggregated per flush) or
// `type: relay` (every sample forwarded at once with its own timestamp).
enum class ProcessorType : std::uint8_t { kAggregate, kRelay };
[[nodiscard]] std::string_view processor_type_name(ProcessorType t) noexcept;

// An aggregation process: reads samples from `input`, maps and aggregates
// them per series, and writes metric snapshots to `output` every flush_interval.
struct ProcessorConfig {
  std::string name;
  ProcessorType type = ProcessorType::kAggregate;
  std::string input;           // `input`: ring name
  std::string output;          // `output`: ring name
  std::string reader;          // `reader`: reader name on `input`; default = component name
  std::string mapping_config;  // `mapping_config`: path as resolved (relative to the pipeline file); "" = none
  std::optional<MappingConfig> mapping;            // loaded and validated mapping_config
  MappingCacheOptions mapping_cache;               // `cache_size`, `cache_type`
  std::uint32_t shards = 1;                        // `shards`: series hash partitions (threads), 1..256
  std::chrono::milliseconds flush_interval{1000};  // `flush_interval`
  // `ttl`: expire series idle this long unless their mapping sets a ttl; 0 = never.
  std::chrono::milliseconds ttl{0};
  std::uint64_t max_series = 1'000'000;           // `max_series`: all series together; 0 = unlimited
  std::uint64_t max_series_per_metric = 100'000;  // `max_series_per_metric`: per metric name; 0 = unlimited
  std::uint64_t max_metrics = 1'000'000;  // `max_metrics`: distinct metric names (1..100M); samples of new names beyond
                                          // it are dropped and counted
  // `state`: keep the aggregation state in crash-safe shared memory, so a
  // killed processor restarts with exact totals (default on); `state_dir`:
  // where ("" = <run_dir>/<pipeline>/<name>.state).
  bool state = true;
  std::string state_dir;
  // `max_name_length`: longer metric names are dropped before mapping (counted
  // as name_too_long); 1..16MiB.
  std::uint64_t max_name_length = 16 * 1024;
  // `quarantine_after_crashes`: a record that was being read when the
  // processor died this many times in a row is skipped and counted; 0 = never.
  std::uint32_t quarantine_after_crashes = 3;
  // `sample_rate`: how a timer, histogram or distribution sampled at @rate is
  // counted: replay (statsd_exporter: int(1/rate) observations) or weighted
  // (one observation of weight 1/rate, so _count may be fractional).
  bool weighted_sample_rate = false;
  // Observation defaults for samples no mapping (or a mapping without
  // options) covers: `observer_type`, `quantiles`, `buckets`,
  // `summary_max_age`, `summary_age_buckets`, `summary_buf_cap`,
  // `native_histogram_bucket_factor`, `native_histogram_max_buckets`.
  ObserverType observer_type = ObserverType::kSummary;
  SummaryOptions summary;      // quantiles default to kDefaultQuantiles
  HistogramOptions histogram;  // buckets default to kDefaultBuckets
  WrittenAt position;
  friend bool operator==(const ProcessorConfig&, const ProcessorConfig&) = default;
};

// ---------------------------------------------------------------- exporters

// Where an exporter publishes: `type: prometheus` (pull) or `type: remote_write` (push).
enum class ExporterType : std::uint8_t { kPrometheus, kRemoteWrite };
[[nodiscard]] std::string_view exporter_type_name(ExporterType t) noexcept;

// TLS material (PEM files). Empty cert_file = TLS off.
struct TlsConfig {
  std::string cert_file;              // `cert_file`
  std::string key_file;               // `key_file`
  std::string ca_file;                // `ca_file`: server: client CAs (mTLS); client: trusted CAs ("" = system)
  bool insecure_skip_verify = false;  // `insecure_skip_verify`: client only
  // Server only, from a web config file's min_version: "TLS10".."TLS13"; ""
  // = what the TLS library allows by default.
  std::string min_version;
  // Server only, from a web config file: max_version ("" = up to TLS 1.3),
  // cipher_suites as OpenSSL names of the TLS 1.2-and-older suites, in the
  // server's order ("" = OpenSSL's default list; TLS 1.3's suites are not
  // configurable, as in Go), and whether the server's order wins.
  std::string max_version;
  std::vector<std::string> cipher_suites;
  bool prefer_server_cipher_suites = true;
  // Read at load: a hash of the files' contents (an unreadable file counts as
  // empty), so a certificate renewed under the same name compares unequal and
  // a reload restarts the component that uses it.
  std::uint64_t contents_digest = 0;
  [[nodiscard]] bool enabled() const noexcept { return !cert_file.empty() || !ca_file.empty(); }
  friend bool operator==(const TlsConfig&, const TlsConfig&) = default;
};

// A user allowed to scrape /metrics: `basic_auth_users: {name: password}`.
// A pipeline file's passwords are plain text; a web config file's
// (--web.config.file) are bcrypt hashes, and `bcrypt` says so.
struct BasicAuthUser {
  std::string username;
  std::string password;
  bool bcrypt = false;  // password is a bcrypt hash ($2a$, $2b$ or $2y$)
  friend bool operator==(const BasicAuthUser&, const BasicAuthUser&) = default;
};

// Prometheus pull endpoint (exposition over HTTP).
struct PrometheusExporterConfig {
  ListenAddress listen;                            // `listen`: host:port, TCP
  std::string path = "/metrics";                   // `path`: starts with '/'
  std::optional<TlsConfig> tls;                    // `tls`: {cert_file, key_file, ca_file}
  std::vector<BasicAuthUser> basic_auth_users;     // `basic_auth_users`: none = no auth
  std::uint32_t max_connections = 1024;            // `max_connections`: HTTP connections served at once (4..16384)
  std::chrono::milliseconds header_timeout{5000};  // `header_timeout`: a request header must arrive within (>= 100ms)
  std::uint32_t quarantine_after_crashes = 3;      // `quarantine_after_crashes`: as the processor's; 0 = never
  std::chrono::milliseconds relay_ttl{0};  // `relay_ttl`: a relayed series not updated this long leaves; 0 = never
  friend bool operator==(const PrometheusExporterConfig&, const PrometheusExporterConfig&) = default;
};

// Prometheus remote_write push client (protobuf + snappy over HTTP).
struct RemoteWriteConfig {
  std::string url;                                    // `url`: http:// or https://
  std::uint32_t batch_size = 2000;                    // `batch_size`: samples per request
  std::uint32_t max_in_flight = 4;                    // `max_in_flight`: concurrent requests
  std::chrono::milliseconds timeout{30'000};          // `timeout`: per request
  std::chrono::milliseconds retry_min_backoff{30};    // `retry_min_backoff`
  std::chrono::milliseconds retry_max_backoff{5000};  // `retry_max_backoff`
  std::map<std::string, std::string> headers;         // `headers`
  std::optional<BasicAuthUser> basic_auth;            // `basic_auth: {username, password}`
  std::string bearer_token;                           // `bearer_token` (exclusive with basic_auth)
  std::optional<TlsConfig> tls;                       // `tls`
  friend bool operator==(const RemoteWriteConfig&, const RemoteWriteConfig&) = default;
};

// An exporter process reading `input`. Only the member matching `type` is meaningful.
struct ExporterConfig {
  std::string name;
  ExporterType type = ExporterType::kPrometheus;
  std::string input;   // `input`: ring name
  std::string reader;  // `reader`: reader name on `input`; default = component name
  // `gating`: whether producers of `input` wait for this reader when a lane
  // is full. Default true for prometheus, false for remote_write: its lane is
  // its bounded backlog, and what producers overwrite is counted as lost.
  bool gating = true;
  PrometheusExporterConfig prometheus;
  RemoteWriteConfig remote_write;
  // `metric_relabel_configs` (prometheus) or `write_relabel_configs`
  // (remote_write): Prometheus' relabeling of each series before it is
  // served or sent; compiled at load. A series it drops is counted.
  relabel::Rules relabel;
  WrittenAt position;
  friend bool operator==(const ExporterConfig&, const ExporterConfig&) = default;
};

// ---------------------------------------------------------------- pipeline

// A validated pipeline: every ring named by a component exists, every ring
// has a producer and a reader, no two listeners share an address.
// Components keep the order of the file.
struct PipelineConfig {
  std::string pipeline = "default";     // `pipeline`: [A-Za-z0-9_.-]+, a directory name
  std::string run_dir{kDefaultRunDir};  // `run_dir`
  std::vector<RingConfig> rings;
  std::vector<SourceConfig> sources;
  std::vector<ProcessorConfig> processors;
  std::vector<ExporterConfig> exporters;
  std::string path;  // the file it came from ("" for built-ins)

  // <run_dir>/<pipeline>/<ring>: where a ring's file lives.
  [[nodiscard]] std::string ring_path(std::string_view ring) const;
  [[nodiscard]] const RingConfig* find_ring(std::string_view name) const noexcept;
  friend bool operator==(const PipelineConfig&, const PipelineConfig&) = default;
};

// Looks up an environment variable: nullopt = unset. The default reads ::getenv.
using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;

// Parses and validates a pipeline file's text. `filename` labels diagnostics
// and anchors relative paths (mapping_config). Mapping files are loaded here.
[[nodiscard]] ConfigResult<PipelineConfig> parse_pipeline(std::string_view text, std::string_view filename);
[[nodiscard]] ConfigResult<PipelineConfig> parse_pipeline(std::string_view text, std::string_view filename,
                                                          const EnvLookup& env);

// Parses one `relabel_configs:` list (a YAML sequence of Prometheus'
// <relabel_config>) on its own, as the pipeline file's keys read it.
[[nodiscard]] ConfigResult<relabel::Rules> parse_relabel_configs(std::string_view text, std::string_view filename);

// Reads, parses and validates a pipeline file.
[[nodiscard]] ConfigResult<PipelineConfig> load_pipeline(const std::string& path);

// The built-in pipeline `ringpipe run` uses without a file, matching
// statsd_exporter's defaults: StatsD on udp+tcp :9125 -> ring raw ->
// aggregate -> ring metrics -> Prometheus on :9102/metrics.
[[nodiscard]] PipelineConfig default_pipeline();

// Builds the default pipeline from statsd_exporter's command line (without
// argv[0]), so its users keep their flags: --statsd.listen-udp/-tcp/-unixgram
// (an empty value disables that listener), --statsd.unixsocket-mode,
// --web.listen-address, --web.telemetry-path, --statsd.mapping-config,
// --statsd.read-buffer, --statsd.cache-size, --statsd.cache-type,
// --[no-]statsd.parse-{dogstatsd,influxdb,librato,signalfx}-tags. Flags that
// only tune statsd_exporter internals (event queue, lifecycle) or the
// process rather than the pipeline (--log.level, --log.format,
// --check-config: the caller acts on them) are accepted and ignored here;
// --web.config.file is read as the exporter-toolkit's web config
// (web_config.hpp); --statsd.relay.* are errors saying what to do instead. Diagnostics name "command line", line 1, and
// the column of the argument in the space-joined arguments.
[[nodiscard]] ConfigResult<PipelineConfig> pipeline_from_statsd_exporter_flags(std::span<const std::string_view> args);

// The pipeline name of an instance configured by flags, so that several run
// on one host without sharing rings: "default" when its first UDP or TCP
// listener is on statsd_exporter's port 9125 (or port 0), else
// "statsd-<port>" ("statsd-9126"), or "statsd-<file name>" for a unixgram
// socket alone. `ringpipe run --pipeline NAME` overrides it.
[[nodiscard]] std::string pipeline_name_for(const std::vector<ListenAddress>& listen);

// A pipeline name is a directory name: letters, digits, '_', '-' and '.',
// not starting with '.', at most 39 bytes.
[[nodiscard]] bool valid_pipeline_name(std::string_view name);

// True when `arg` ("--name", "--name=value", "--no-name") names one of
// statsd_exporter's flags that pipeline_from_statsd_exporter_flags() knows,
// the refused ones included; false for anything else (a usage error).
[[nodiscard]] bool is_statsd_exporter_flag(std::string_view arg);

}  // namespace ringpipe::config
