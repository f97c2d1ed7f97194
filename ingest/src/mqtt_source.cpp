#include "ringpipe/ingest/mqtt_source.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <mutex>
#include <thread>
#include <tuple>

#include <mosquitto.h>
#include <spdlog/spdlog.h>

#include "ringpipe/config/mqtt_topic.hpp"
#include "ringpipe/ingest/topic_template.hpp"
#include "source_stats.hpp"
#include "text.hpp"
#include "worker.hpp"

namespace ringpipe::ingest {

namespace {

constexpr int kLoopTimeoutMs = 50;       // how often the loop looks at the stop flag
constexpr int kMaxReadsPerBatch = 1024;  // messages one claim takes at most (a record may still rotate)

// libmosquitto's global state: initialised once per process, never torn down
// (other clients may live in the same process).
void init_library() {
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

bool is_blank(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

}  // namespace

struct MqttSource::Impl {
  MqttConfig config;
  IngestStats stats;
  MqttStats mqtt;
  RateLimiter error_log;    // malformed input (the Worker's)
  RateLimiter connect_log;  // connection trouble
  TopicTemplate topic_template;
  std::unique_ptr<Worker> worker;
  mosquitto* client = nullptr;
  std::thread thread;
  std::atomic<bool> stopping{false};
  bool started = false;
  bool in_batch = false;  // a claim is open for this loop iteration
  bool connected = false;
  std::array<sample::Tag, kMaxTags> topic_tags{};
  std::array<sample::Tag, 2 * kMaxTags> merged_tags{};
  std::unique_ptr<stats::Publisher> publisher;
  std::string what;

  explicit Impl(const MqttConfig& c)
      : config(c), error_log(c.error_log_interval), connect_log(c.error_log_interval), what("mqtt " + c.name) {}
  ~Impl() {
    if (client != nullptr) mosquitto_destroy(client);
  }

  void on_message(const mosquitto_message& m) noexcept;
  void parse_value(std::string_view payload, std::string_view name, std::span<const sample::Tag> tags) noexcept;
  void run() noexcept;
  Status connect_once() noexcept;
};

namespace {

// 1 for true/on, 0 for false/off (any case), -1 for anything else.
int boolean_value(std::string_view s) noexcept {
  const auto is = [&](std::string_view word) {
    return s.size() == word.size() && std::equal(s.begin(), s.end(), word.begin(), [](char a, char b) {
             return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
           });
  };
  if (is("true") || is("on")) return 1;
  if (is("false") || is("off")) return 0;
  return -1;
}

}  // namespace

void MqttSource::Impl::parse_value(std::string_view payload, std::string_view name,
                                   std::span<const sample::Tag> tags) noexcept {
  ParseCounters& c = worker->counters();
  while (!payload.empty() && is_blank(payload.front())) payload.remove_prefix(1);
  while (!payload.empty() && is_blank(payload.back())) payload.remove_suffix(1);
  ++c.lines;
  if (name.empty()) {
    c.count(ParseError::kEmptyName);
    return;
  }
  if (!text::valid_utf8(name)) {
    c.count(ParseError::kInvalidUtf8);
    return;
  }
  double value = 0;
  if (const int b = boolean_value(payload); b >= 0) {
    value = b;  // door and motion sensors publish true/false or ON/OFF
  } else if (!text::parse_float(payload, value)) {
    c.count(ParseError::kMalformedValue);
    return;
  }
  if (std::isnan(value)) {
    c.count(ParseError::kNonFiniteValue);
    return;
  }
  ++c.samples;
  worker->out().emit(config.kind, name, value, 1.0, tags);
}

void MqttSource::Impl::on_message(const mosquitto_message& m) noexcept {
  if (!in_batch) {  // the first message of this loop iteration claims for all of them
    worker->begin(realtime_ns());
    in_batch = true;
  }
  mqtt.messages.fetch_add(1, std::memory_order_relaxed);
  mqtt.bytes.fetch_add(static_cast<std::uint64_t>(m.payloadlen), std::memory_order_relaxed);
  ParseCounters& c = worker->counters();
  if (static_cast<std::size_t>(m.payloadlen) > config.max_message_bytes) {
    c.count(ParseError::kMessageTooLarge);
    return;
  }
  const std::string_view topic = m.topic != nullptr ? std::string_view(m.topic) : std::string_view();
  TopicTemplate::Match match;
  if (!topic_template.match(topic, topic_tags, match)) {
    c.count(ParseError::kTopicMismatch);
    return;
  }
  const std::string_view payload(static_cast<const char*>(m.payload), static_cast<std::size_t>(m.payloadlen));
  const std::span<const sample::Tag> tags(topic_tags.data(), match.labels);
  const std::string_view name = !config.metric_name.empty() ? std::string_view(config.metric_name) : match.name;
  switch (config.payload) {
    case MqttPayload::kValue:
      parse_value(payload, name, tags);
      return;
    case MqttPayload::kJson:
      // One object per message, which may span lines (pretty-printed).
      if (auto* j = worker->parser().get_if<JsonParser>()) {
        j->set_fallback_name(match.name);
        worker->out().set_extra_tags(tags, merged_tags);
        j->parse_line(payload, worker->out(), c);
        worker->out().set_extra_tags({}, {});
      }
      return;
    case MqttPayload::kInflux:
      break;
  }
  worker->out().set_extra_tags(tags, merged_tags);
  worker->parse(payload);  // line protocol: every line of the message
  worker->out().set_extra_tags({}, {});
}

Status MqttSource::Impl::connect_once() noexcept {
  const int rc = mosquitto_connect(client, config.host.c_str(), config.port,
                                   static_cast<int>(std::max<std::int64_t>(5, config.keepalive.count() / 1000)));
  if (rc != MOSQ_ERR_SUCCESS) {
    mqtt.connect_failures.fetch_add(1, std::memory_order_relaxed);
    return invalid(what + ": connect " + config.host + ":" + std::to_string(config.port) + ": " +
                   (rc == MOSQ_ERR_ERRNO ? std::string(std::strerror(errno)) : mosquitto_strerror(rc)));
  }
  return {};
}

void MqttSource::Impl::run() noexcept {
  auto backoff = config.reconnect_min;
  bool ever_connected_socket = false;
  while (!stopping.load(std::memory_order_acquire)) {
    if (!ever_connected_socket) {
      if (auto s = connect_once(); !s) {
        if (connect_log.allow()) {
          spdlog::warn("{}; retrying in {} ms ({} similar warnings suppressed)", s.error().context, backoff.count(),
                       connect_log.take_suppressed());
        }
        const auto until = std::chrono::steady_clock::now() + backoff;
        while (!stopping.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < until)
          std::this_thread::sleep_for(
              std::chrono::milliseconds(std::min<std::int64_t>(kLoopTimeoutMs, backoff.count())));
        backoff = std::min(backoff * 2, config.reconnect_max);
        continue;
      }
      ever_connected_socket = true;
    }
    int rc = mosquitto_loop(client, kLoopTimeoutMs, 1);
    // mosquitto_loop() hands over one QoS 0 message per call: take what else
    // the socket already holds into the same claim.
    for (int i = 0; rc == MOSQ_ERR_SUCCESS && in_batch && i < kMaxReadsPerBatch; ++i) {
      const std::uint64_t before = mqtt.messages.load(std::memory_order_relaxed);
      rc = mosquitto_loop_read(client, 1);
      if (mqtt.messages.load(std::memory_order_relaxed) == before) break;
    }
    if (in_batch) {
      worker->end();
      in_batch = false;
    }
    if (connected) backoff = config.reconnect_min;
    if (rc == MOSQ_ERR_SUCCESS) continue;
    if (stopping.load(std::memory_order_acquire)) break;
    // The connection is gone (or was refused): wait, then reconnect; the
    // connect callback subscribes again.
    if (connected) {
      connected = false;
      mqtt.connected.store(0, std::memory_order_relaxed);
      mqtt.disconnects.fetch_add(1, std::memory_order_relaxed);
    } else {  // the last attempt never got a CONNACK (refused, unreachable, TLS handshake)
      mqtt.connect_failures.fetch_add(1, std::memory_order_relaxed);
    }
    if (connect_log.allow()) {
      spdlog::warn("{}: connection to {}:{} lost: {}; reconnecting in {} ms ({} similar warnings suppressed)", what,
                   config.host, config.port, mosquitto_strerror(rc), backoff.count(), connect_log.take_suppressed());
    }
    const auto until = std::chrono::steady_clock::now() + backoff;
    while (!stopping.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<std::int64_t>(kLoopTimeoutMs, backoff.count())));
    backoff = std::min(backoff * 2, config.reconnect_max);
    if (stopping.load(std::memory_order_acquire)) break;
    // A failure shows as the next loop's error, and is counted there.
    (void)mosquitto_reconnect(client);
  }
  if (in_batch) {
    worker->end();
    in_batch = false;
  }
  if (connected) {
    mosquitto_disconnect(client);
    // Let the DISCONNECT go out.
    for (int i = 0; i < 3 && mosquitto_loop(client, 10, 1) == MOSQ_ERR_SUCCESS; ++i) {
    }
    connected = false;
    mqtt.connected.store(0, std::memory_order_relaxed);
  }
}

Result<std::unique_ptr<MqttSource>> MqttSource::create(const MqttConfig& config, const TargetFactory& targets) {
  init_library();
  auto impl = std::make_unique<Impl>(config);
  const std::string& what = impl->what;
  if (config.topics.empty()) return invalid(what + ": no topics to subscribe to");
  for (const std::string& topic : config.topics) {
    if (!ringpipe::config::valid_topic_filter(topic))
      return invalid(what + ": \"" + topic + "\" is not an MQTT topic filter");
  }
  if (config.qos < 0 || config.qos > 1) return invalid(what + ": qos must be 0 or 1");
  auto tmpl = TopicTemplate::parse(config.topic_template);
  if (!tmpl) return tl::unexpected(Error{tmpl.error().code, what + ": " + tmpl.error().context});
  impl->topic_template = std::move(*tmpl);
  if (config.payload == MqttPayload::kValue && config.metric_name.empty() && !impl->topic_template.captures_name())
    return invalid(what + ": payload value needs a name or a topic_template with a +name level");

  IngestConfig ic;
  ic.name = config.name;
  ic.source_id = config.source_id;
  ic.relabel = config.relabel;
  ic.parser = config.parser;
  ic.parser.protocol = config.payload == MqttPayload::kInflux ? Protocol::kInflux : Protocol::kJson;
  if (config.payload == MqttPayload::kJson && ic.parser.json.name.empty()) ic.parser.json.name = config.metric_name;
  ic.parser.json.max_line_bytes = std::min(config.max_message_bytes, kMaxJsonLineBytes);
  ic.error_log_interval = config.error_log_interval;
  auto t = targets();
  if (!t) return tl::unexpected(Error{t.error().code, what + ": " + t.error().context});
  impl->worker = std::make_unique<Worker>(ic, std::move(*t), impl->stats, impl->error_log);

  const std::string client_id =
      config.client_id.empty() ? "ringpipe-" + config.name + "-" + std::to_string(::getpid()) : config.client_id;
  impl->client = mosquitto_new(client_id.c_str(), true, impl.get());
  if (impl->client == nullptr) return errno_error(what + ": mosquitto_new");
  if (!config.username.empty()) {
    const int rc = mosquitto_username_pw_set(impl->client, config.username.c_str(),
                                             config.password.empty() ? nullptr : config.password.c_str());
    if (rc != MOSQ_ERR_SUCCESS) return invalid(what + ": username: " + mosquitto_strerror(rc));
  }
  if (config.tls) {
    auto opt = [](const std::string& s) { return s.empty() ? nullptr : s.c_str(); };
    const char* ca = opt(config.ca_file);
    if (ca == nullptr) (void)mosquitto_int_option(impl->client, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
    const int rc = mosquitto_tls_set(impl->client, ca, ca == nullptr ? "/etc/ssl/certs" : nullptr,
                                     opt(config.cert_file), opt(config.key_file), nullptr);
    if (rc != MOSQ_ERR_SUCCESS) return invalid(what + ": tls: " + mosquitto_strerror(rc));
  }
  mosquitto_connect_callback_set(impl->client, [](mosquitto* m, void* self, int rc) {
    auto* s = static_cast<Impl*>(self);
    if (rc != 0) {  // the broker closes the connection next: counted as a failed attempt there
      if (s->connect_log.allow()) {
        spdlog::warn("{}: broker refused the connection: {}", s->what, mosquitto_connack_string(rc));
      }
      return;
    }
    s->connected = true;
    s->mqtt.connects.fetch_add(1, std::memory_order_relaxed);
    s->mqtt.connected.store(1, std::memory_order_relaxed);
    for (const std::string& topic : s->config.topics) {
      const int sub = mosquitto_subscribe(m, nullptr, topic.c_str(), s->config.qos);
      if (sub != MOSQ_ERR_SUCCESS) spdlog::error("{}: subscribe {}: {}", s->what, topic, mosquitto_strerror(sub));
    }
    spdlog::info("{}: connected to {}:{}, subscribed to {} topic filters", s->what, s->config.host, s->config.port,
                 s->config.topics.size());
  });
  mosquitto_message_callback_set(impl->client, [](mosquitto*, void* self, const mosquitto_message* msg) {
    if (msg != nullptr) static_cast<Impl*>(self)->on_message(*msg);
  });

  auto p = open_source_publisher(config.stats_segment, config.stats_path, ic, impl->stats, what);
  if (!p) return tl::unexpected(p.error());
  if (*p) {
    const MqttStats& m = impl->mqtt;
    for (auto [from, name, help, gauge] :
         {std::tuple{&m.messages, "source_mqtt_messages_total", "MQTT messages received.", false},
          std::tuple{&m.bytes, "source_mqtt_bytes_total", "MQTT payload bytes received.", false},
          std::tuple{&m.connects, "source_mqtt_connects_total", "Connections accepted by the broker.", false},
          std::tuple{&m.connect_failures, "source_mqtt_connect_failures_total",
                     "Connection attempts that failed or were refused.", false},
          std::tuple{&m.disconnects, "source_mqtt_disconnects_total", "Connections to the broker lost.", false},
          std::tuple{&m.connected, "source_mqtt_connected", "1 while connected to the broker.", true}}) {
      if (auto s = gauge ? (*p)->add_gauge(*from, name, help) : (*p)->add_counter(*from, name, help); !s)
        return tl::unexpected(Error{s.error().code, what + ": stats: " + s.error().context});
    }
    impl->publisher = std::move(*p);
  }
  return std::unique_ptr<MqttSource>(new MqttSource(std::move(impl)));
}

MqttSource::MqttSource(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

MqttSource::~MqttSource() { stop(); }

Status MqttSource::start() {
  if (impl_->started) return invalid(impl_->what + ": already started");
  impl_->started = true;
  if (impl_->publisher) {
    if (Status publishing = impl_->publisher->start(impl_->config.stats_interval); !publishing) {
      return tl::unexpected(Error{publishing.error().code, impl_->what + ": start: " + publishing.error().context});
    }
  }
  try {
    impl_->thread = std::thread([this] { impl_->run(); });
  } catch (const std::exception& e) {
    if (impl_->publisher) impl_->publisher->stop();
    return invalid(impl_->what + ": start: " + e.what());
  }
  return {};
}

void MqttSource::stop() noexcept {
  impl_->stopping.store(true, std::memory_order_release);
  if (!impl_->thread.joinable()) return;
  impl_->thread.join();
  if (impl_->publisher) impl_->publisher->stop();  // exact totals at stop
}

const IngestStats& MqttSource::stats() const noexcept { return impl_->stats; }
const MqttStats& MqttSource::mqtt_stats() const noexcept { return impl_->mqtt; }

}  // namespace ringpipe::ingest
