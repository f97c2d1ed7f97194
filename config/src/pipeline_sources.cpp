// sources.<name>: the type, listen addresses and output ring, the keys of the
// listening types (statsd tags, buffers, limits, timeouts, socket mode), and
// the JSON field mapping of type: json (and of mqtt's json and value
// payloads). The keys of mqtt, prometheus_scrape and remote_write are read in
// their own files; each is refused on the other types.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "pipeline_loader.hpp"
#include "relabel_reader.hpp"

namespace ringpipe::config::detail {

void Loader::read_source(const YamlNode& key, const YamlNode& value) {
  SourceConfig s;
  s.name = key.scalar;
  s.position = key.position;
  const std::string who = "source " + quote(s.name);
  Fields f(body(value), who,
           {"type",
            "listen",
            "output",
            "tags",
            "read_buffer",
            "udp_sockets",
            "max_line_length",
            "max_connections",
            "max_buffered_size",
            "idle_timeout",
            "socket_mode",
            "write_timeout",
            "relabel_configs",
            "value_field",
            "name_field",
            "name",
            "timestamp_field",
            "timestamp_precision",
            "kind",
            "max_labels",
            "broker",
            "username",
            "password",
            "client_id",
            "topics",
            "qos",
            "payload",
            "topic_template",
            "ca_file",
            "cert_file",
            "key_file",
            "max_message_size",
            "path",
            "max_body_size",
            "targets",
            "interval",
            "timeout",
            "honor_labels",
            "job",
            "max_series_per_request",
            "max_labels_per_request",
            "max_samples_per_request",
            "max_inflight_body_size"},
           d_);
  if (const auto* v = f.get("type"); v == nullptr) {
    d_.add(
        s.position,
        who +
            ": found no type, expected type: statsd, influx, graphite, json, mqtt, prometheus_scrape or remote_write");
  } else if (auto t = detail::read_string(*v, f.at("type"), d_)) {
    if (*t == "statsd") {
      s.type = SourceType::kStatsd;
    } else if (*t == "influx") {
      s.type = SourceType::kInflux;
    } else if (*t == "graphite") {
      s.type = SourceType::kGraphite;
    } else if (*t == "json") {
      s.type = SourceType::kJson;
    } else if (*t == "mqtt") {
      s.type = SourceType::kMqtt;
    } else if (*t == "remote_write") {
      s.type = SourceType::kRemoteWrite;
    } else if (*t == "prometheus_scrape") {
      s.type = SourceType::kPrometheusScrape;
    } else {
      d_.add(*v, f.at("type") + ": found " + describe(*v) +
                     ", expected statsd, influx, graphite, json, mqtt, prometheus_scrape or remote_write");
    }
  }
  if (s.type == SourceType::kMqtt) {
    if (const auto* v = f.get("listen")) {
      d_.add(*v, f.at("listen") + ": found listen addresses on type: mqtt, expected broker: mqtt://host:port instead");
    }
  } else if (s.type == SourceType::kPrometheusScrape) {
    if (const auto* v = f.get("listen")) {
      d_.add(*v,
             f.at("listen") +
                 ": found listen addresses on type: prometheus_scrape, expected targets: [http://host:port/metrics] "
                 "instead");
    }
  } else if (const auto* v = f.get("listen"); v == nullptr || (v->is_sequence() && v->items.empty())) {
    d_.add(v ? v->position : s.position,
           who + ": found no listen address, expected listen: [udp://0.0.0.0:9125, tcp://0.0.0.0:9125]");
  } else {
    // remote_write listens on TCP only: a bare host:port is enough there.
    const auto implied = s.type == SourceType::kRemoteWrite ? std::optional(Transport::kTcp) : std::nullopt;
    read_listen(*v, f.at("listen"), implied, s.listen, who);
  }
  use_ring(f, "output", who, true, s.position, s.output);
  if (const auto* v = f.get("tags")) {
    if (s.type != SourceType::kStatsd) {
      d_.add(*v, f.at("tags") + ": found tag flavors on type: " + std::string(source_type_name(s.type)) +
                     ", expected them only on type: statsd");
    }
    Fields t(v, f.at("tags"), {"dogstatsd", "influxdb", "librato", "signalfx"}, d_);
    auto flag = [&](std::string_view k, bool& out) {
      if (const auto* b = t.get(k)) {
        if (auto x = detail::read_bool(*b, t.at(k), d_)) out = *x;
      }
    };
    flag("dogstatsd", s.tags.dogstatsd);
    flag("influxdb", s.tags.influxdb);
    flag("librato", s.tags.librato);
    flag("signalfx", s.tags.signalfx);
  }
  if (const auto* v = f.get("read_buffer")) {
    if (auto x = detail::read_size(*v, f.at("read_buffer"), d_)) {
      if (*x > INT32_MAX) {
        d_.add(*v,
               f.at("read_buffer") + ": found " + describe(*v) + ", expected at most 2GiB - 1 (SO_RCVBUF is an int)");
      } else {
        s.read_buffer_bytes = *x;
      }
    }
  }
  read_uint_into(f, "udp_sockets", 1, 256, s.udp_sockets);
  read_size_into(f, "max_line_length", 64, 16u << 20, "64 bytes to 16MiB", s.max_line_length);
  read_uint_into(f, "max_connections", 1, 1'000'000, s.max_connections);
  read_size_into(f, "max_buffered_size", s.max_line_length, std::uint64_t{64} << 30,
                 "max_line_length (" + std::to_string(s.max_line_length) + " bytes) to 64GiB", s.max_buffered_bytes);
  read_millis_into(f, "idle_timeout", s.idle_timeout);
  if (const auto* v = f.get("socket_mode")) {
    auto text = detail::read_string(*v, f.at("socket_mode"), d_);
    const bool octal = text && !text->empty() && text->size() <= 4 &&
                       std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '7'; });
    if (octal) {
      s.socket_mode = static_cast<std::uint32_t>(std::strtoul(text->c_str(), nullptr, 8));
    } else if (text) {
      d_.add(*v, f.at("socket_mode") + ": found " + describe(*v) + ", expected octal permissions such as \"0660\"");
    }
  }
  read_millis_into(f, "write_timeout", s.write_timeout);
  if (const auto* v = f.get("relabel_configs")) read_relabel_configs(*v, f.at("relabel_configs"), s.relabel, d_);
  read_json_mapping(f, s);
  read_mqtt(f, s);
  read_scrape(f, s);
  read_remote_write(f, s);
  if (const auto* v = f.get("max_body_size");
      v != nullptr && s.type != SourceType::kPrometheusScrape && s.type != SourceType::kRemoteWrite) {
    d_.add(*v, f.at("max_body_size") + ": found a body size limit on type: " + std::string(source_type_name(s.type)) +
                   ", expected it only on type: prometheus_scrape or remote_write");
  }
  config_.sources.push_back(std::move(s));
}

// On a source of another type than `type`, each of `keys` present is an
// error ("found <what> on type: x, expected it only on type: <type>").
// Returns whether the source is of `type`.
bool Loader::keys_only_on(const Fields& f, const SourceConfig& s, SourceType type,
                          std::span<const std::string_view> keys, std::string_view what) {
  if (s.type == type) return true;
  for (const std::string_view k : keys) {
    if (const auto* v = f.get(k)) {
      d_.add(*v, f.at(k) + ": found " + std::string(what) + " on type: " + std::string(source_type_name(s.type)) +
                     ", expected it only on type: " + std::string(source_type_name(type)));
    }
  }
  return false;
}

// The field mapping of type: json; its keys are refused on other types.
void Loader::read_json_mapping(const Fields& f, SourceConfig& s) {
  static constexpr std::string_view kKeys[] = {"value_field",         "name_field", "name",      "timestamp_field",
                                               "timestamp_precision", "kind",       "max_labels"};
  if (s.type != SourceType::kJson && s.type != SourceType::kMqtt) {
    for (const std::string_view k : kKeys) {
      // remote_write and prometheus_scrape read max_labels themselves.
      if (k == "max_labels" && (s.type == SourceType::kRemoteWrite || s.type == SourceType::kPrometheusScrape))
        continue;
      if (const auto* v = f.get(k)) {
        d_.add(*v, f.at(k) + ": found a JSON field mapping key on type: " + std::string(source_type_name(s.type)) +
                       ", expected it only on type: json or mqtt");
      }
    }
    return;
  }
  JsonMapping& m = s.json;
  auto field = [&](std::string_view k, std::string& out, bool may_be_empty) {
    const auto* v = f.get(k);
    if (v == nullptr) return;
    auto text = detail::read_string(*v, f.at(k), d_);
    if (!text) return;
    if (text->empty() && !may_be_empty) {
      d_.add(*v, f.at(k) + ": found an empty string, expected a field name");
      return;
    }
    out = *text;
  };
  field("value_field", m.value_field, false);
  field("name_field", m.name_field, false);
  field("name", m.name, false);
  field("timestamp_field", m.timestamp_field, true);
  if (f.get("name") != nullptr && f.get("name_field") != nullptr) {
    d_.add(*f.get("name"), f.at("name") + ": found both name and name_field, expected one of them");
  }
  if (const auto* v = f.get("timestamp_precision")) {
    if (auto p = detail::read_string(*v, f.at("timestamp_precision"), d_)) {
      if (*p == "s") {
        m.timestamp_precision = TimestampPrecision::kSeconds;
      } else if (*p == "ms") {
        m.timestamp_precision = TimestampPrecision::kMilliseconds;
      } else if (*p == "us") {
        m.timestamp_precision = TimestampPrecision::kMicroseconds;
      } else if (*p == "ns") {
        m.timestamp_precision = TimestampPrecision::kNanoseconds;
      } else {
        d_.add(*v, f.at("timestamp_precision") + ": found " + describe(*v) + ", expected s, ms, us or ns");
      }
    }
    if (m.timestamp_field.empty()) {
      d_.add(*v, f.at("timestamp_precision") + ": found a precision without timestamp_field, expected both");
    }
  }
  if (const auto* v = f.get("kind")) {
    if (auto k = detail::read_string(*v, f.at("kind"), d_)) {
      if (*k == "gauge") {
        m.counter = false;
      } else if (*k == "counter") {
        m.counter = true;
      } else {
        d_.add(*v, f.at("kind") + ": found " + describe(*v) + ", expected gauge or counter");
      }
    }
  }
  read_uint_into(f, "max_labels", 0, 64, m.max_labels);
  if (s.type == SourceType::kJson && s.max_line_length > kMaxJsonLineLength) {
    d_.add(f.get("max_line_length")->position, f.at("max_line_length") + ": found " +
                                                   describe(*f.get("max_line_length")) +
                                                   ", expected at most 1MiB on type: json");
  }
}

}  // namespace ringpipe::config::detail
