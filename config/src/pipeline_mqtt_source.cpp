// sources.<name> of type: mqtt: the broker URL, credentials, client id,
// subscription filters, QoS, payload format, topic_template and TLS files.
#include <string>

#include "pipeline_loader.hpp"
#include "ringpipe/config/mqtt_topic.hpp"

namespace ringpipe::config::detail {

// The broker, subscriptions and payload of type: mqtt; its keys are refused on other types.
void Loader::read_mqtt(const Fields& f, SourceConfig& s) {
  static constexpr std::string_view kKeys[] = {"broker",  "username",  "password", "client_id",
                                               "topics",  "qos",       "payload",  "topic_template",
                                               "ca_file", "cert_file", "key_file", "max_message_size"};
  if (!keys_only_on(f, s, SourceType::kMqtt, kKeys, "an MQTT key")) return;
  MqttSourceConfig& m = s.mqtt;
  if (const auto* v = f.get("broker"); v == nullptr) {
    d_.add(s.position, "source " + quote(s.name) + ": found no broker, expected broker: mqtt://host:port");
  } else if (auto text = detail::read_string(*v, f.at("broker"), d_)) {
    m.broker = *text;
    std::string_view rest = *text;
    bool ok = true;
    if (rest.starts_with("mqtt://")) {
      rest.remove_prefix(7);
    } else if (rest.starts_with("mqtts://")) {
      rest.remove_prefix(8);
      m.tls = true;
      m.port = 8883;
    } else {
      ok = false;
    }
    std::string_view host = rest;
    if (ok && !rest.empty() && rest.front() == '[') {  // [v6]:port
      const std::size_t close = rest.find(']');
      ok = close != std::string_view::npos;
      if (ok) {
        host = rest.substr(1, close - 1);
        rest.remove_prefix(close + 1);
        ok = rest.empty() || rest.front() == ':';
        if (ok && !rest.empty())
          rest.remove_prefix(1);
        else
          rest = {};
        if (ok && !rest.empty() && !parse_port(rest, m.port)) ok = false;
      }
    } else if (ok) {
      const std::size_t colon = rest.rfind(':');
      if (colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        ok = parse_port(rest.substr(colon + 1), m.port);
      }
    }
    if (!ok || host.empty() || host.find('/') != std::string_view::npos) {
      d_.add(*v, f.at("broker") + ": found " + describe(*v) + ", expected mqtt://host:port or mqtts://host:port");
    } else {
      m.host = std::string(host);
    }
  }
  read_string_into(f, "username", m.username);
  read_string_into(f, "password", m.password);
  read_string_into(f, "client_id", m.client_id);
  if (m.client_id.size() > 23 && f.get("client_id") != nullptr) {
    // MQTT 3.1.1 brokers need only accept 23 bytes; mosquitto takes more. Allow, but keep sane.
    if (m.client_id.size() > 256) {
      d_.add(*f.get("client_id"),
             f.at("client_id") + ": found " + std::to_string(m.client_id.size()) + " bytes, expected at most 256");
    }
  }
  if (const auto* v = f.get("topics"); v == nullptr) {
    d_.add(s.position, "source " + quote(s.name) + ": found no topics, expected topics: [sensors/#]");
  } else {
    read_list(*v, f.at("topics"), "topic filter", [&](const YamlNode& n) {
      auto t = detail::read_string(n, f.at("topics"), d_);
      if (!t) return;
      if (t->size() > kMaxTopicBytes) {
        d_.add(n, f.at("topics") + ": found a topic filter of " + std::to_string(t->size()) +
                      " bytes, expected at most " + std::to_string(kMaxTopicBytes) + " (MQTT's limit)");
        return;
      }
      if (!valid_topic_text(*t)) {
        d_.add(n, f.at("topics") +
                      ": found a topic filter with malformed UTF-8, a NUL or a control character, "
                      "expected UTF-8 text (MQTT's rule for topics)");
        return;
      }
      if (!valid_topic_filter(*t)) {
        d_.add(n, f.at("topics") + ": found " + quote(*t) +
                      ", expected an MQTT topic filter ('+' and '#' as whole levels, '#' last)");
        return;
      }
      m.topics.push_back(*t);
    });
  }
  read_uint_into(f, "qos", 0, 1, m.qos);
  bool payload_ok = true;
  if (const auto* v = f.get("payload")) {
    payload_ok = false;
    if (auto p = detail::read_string(*v, f.at("payload"), d_)) {
      payload_ok = *p == "influx" || *p == "json" || *p == "value";
      if (*p == "influx") {
        m.payload = MqttPayloadFormat::kInflux;
      } else if (*p == "json") {
        m.payload = MqttPayloadFormat::kJson;
      } else if (*p == "value") {
        m.payload = MqttPayloadFormat::kValue;
      } else {
        d_.add(*v, f.at("payload") + ": found " + describe(*v) + ", expected influx, json or value");
      }
    }
  }
  if (const auto* v = f.get("topic_template")) {
    if (auto t = detail::read_string(*v, f.at("topic_template"), d_)) {
      if (auto why = topic_template_problem(*t); !why.empty()) {
        d_.add(*v, f.at("topic_template") + ": found " + quote(*t) + " with " + why +
                       ", expected levels that are literals, +label, + or a last #");
      } else {
        m.topic_template = *t;
      }
    }
  }
  if (payload_ok && m.payload == MqttPayloadFormat::kValue && s.json.name.empty() &&
      !topic_template_captures_name(m.topic_template)) {
    d_.add(f.get("payload") ? f.get("payload")->position : s.position,
           "source " + quote(s.name) +
               ": found payload: value without a metric name, expected name: <metric> or a topic_template with a "
               "+name level");
  }
  read_string_into(f, "ca_file", m.ca_file);
  read_string_into(f, "cert_file", m.cert_file);
  read_string_into(f, "key_file", m.key_file);
  for (const std::string_view k : {"ca_file", "cert_file", "key_file"}) {
    if (const auto* v = f.get(k); v != nullptr && !m.tls) {
      d_.add(*v, f.at(k) + ": found TLS files with broker " + quote(m.broker) + ", expected an mqtts:// broker");
    }
  }
  if (m.cert_file.empty() != m.key_file.empty()) {
    d_.add(s.position, "source " + quote(s.name) + ": found " +
                           std::string(m.cert_file.empty() ? "key_file" : "cert_file") +
                           " alone, expected cert_file and key_file together");
  }
  read_size_into(f, "max_message_size", 16, kMaxJsonLineLength, "16 bytes to 1MiB", m.max_message_bytes);
}

}  // namespace ringpipe::config::detail
