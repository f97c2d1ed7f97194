#pragma once
// MqttSource: the MQTT ingest component. One libmosquitto client subscribes
// to topic filters on a broker (mqtt:// or mqtts:// with TLS files,
// username/password, QoS 0 or 1) and turns every message into samples: the
// payload is InfluxDB line protocol, a JSON object or a bare number, and a
// TopicTemplate maps topic levels to the metric name and labels. One thread
// runs the client's loop; the messages of one loop iteration share one ring
// claim. A lost connection is retried with a capped, doubling backoff and the
// subscriptions are renewed on every connect. Self-metrics are IngestStats
// plus MqttStats, mirrored into a stats segment like IngestServer's.
// create() fails with a Result (bad template, TLS files); start()/stop()
// never throw; stop() may be called from any thread but a signal handler.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ringpipe/common/result.hpp"
#include "ringpipe/ingest/batch_target.hpp"
#include "ringpipe/ingest/ingest_server.hpp"
#include "ringpipe/stats/stats_segment.hpp"

namespace ringpipe::ingest {

enum class MqttPayload : std::uint8_t { kInflux, kJson, kValue };

struct MqttConfig {
  std::string name = "mqtt";  // in log lines and the client id's default
  std::uint32_t source_id = 0;
  relabel::Rules relabel;  // applied to every sample before the ring (IngestConfig::relabel)
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  bool tls = false;  // mqtts://
  std::string ca_file, cert_file, key_file;
  std::string username, password;
  std::string client_id;            // "" = "ringpipe-<name>-<pid>"
  std::vector<std::string> topics;  // subscription filters
  int qos = 0;                      // 0 or 1
  MqttPayload payload = MqttPayload::kValue;
  std::string topic_template;                // see topic_template.hpp
  std::string metric_name;                   // fixed name (value payload, or json without a name)
  sample::Kind kind = sample::Kind::kGauge;  // value payload
  ParserOptions parser;                      // influx and json payloads
  std::size_t max_message_bytes = 65536;     // larger payloads: kMessageTooLarge
  std::chrono::milliseconds keepalive{std::chrono::seconds(30)};
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{std::chrono::seconds(30)};
  std::chrono::milliseconds error_log_interval{std::chrono::seconds(10)};
  std::shared_ptr<stats::StatsSegment> stats_segment;  // as IngestConfig
  std::string stats_path;
  std::chrono::milliseconds stats_interval{250};
};

// MQTT counters beside IngestStats; relaxed atomics, readable at any time.
struct MqttStats {
  std::atomic<std::uint64_t> messages{0};
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<std::uint64_t> connects{0};          // successful CONNACKs
  std::atomic<std::uint64_t> connect_failures{0};  // refused or unreachable attempts
  std::atomic<std::uint64_t> disconnects{0};       // connections lost
  std::atomic<std::uint64_t> connected{0};         // gauge: 1 while connected
};

class MqttSource {
 public:
  [[nodiscard]] static Result<std::unique_ptr<MqttSource>> create(const MqttConfig& config,
                                                                  const TargetFactory& targets);
  ~MqttSource();
  MqttSource(const MqttSource&) = delete;
  MqttSource& operator=(const MqttSource&) = delete;

  // Starts the client thread and returns; the first connect happens there.
  Status start();
  // Stops the loop, commits what is parsed, disconnects and joins. Idempotent.
  void stop() noexcept;

  [[nodiscard]] const IngestStats& stats() const noexcept;
  [[nodiscard]] const MqttStats& mqtt_stats() const noexcept;

  struct Impl;

 private:
  explicit MqttSource(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringpipe::ingest
