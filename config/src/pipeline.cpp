#include "ringpipe/config/pipeline.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <system_error>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "mapping_rules.hpp"
#include "schema.hpp"
#include "yaml_tree.hpp"

namespace ringpipe::config {

std::string_view overflow_policy_name(OverflowPolicy p) noexcept {
  switch (p) {
    case OverflowPolicy::kBlock: return "block";
    case OverflowPolicy::kDrop: return "drop";
    case OverflowPolicy::kOverwrite: return "overwrite";
  }
  return "?";
}

std::string_view transport_name(Transport t) noexcept {
  switch (t) {
    case Transport::kUdp: return "udp";
    case Transport::kTcp: return "tcp";
    case Transport::kUnix: return "unix";
    case Transport::kUnixgram: return "unixgram";
  }
  return "?";
}

std::string_view source_type_name(SourceType t) noexcept {
  switch (t) {
    case SourceType::kStatsd: return "statsd";
    case SourceType::kInflux: return "influx";
    case SourceType::kGraphite: return "graphite";
    case SourceType::kJson: return "json";
    case SourceType::kMqtt: return "mqtt";
    case SourceType::kRemoteWrite: return "remote_write";
    case SourceType::kPrometheusScrape: return "prometheus_scrape";
  }
  return "?";
}

std::string_view processor_type_name(ProcessorType) noexcept { return "aggregate"; }

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
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '.' && c != '-' && c != ':' && c != '_' &&
        c != '%') {
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

using detail::describe;
using detail::Diags;
using detail::Fields;
using detail::quote;
using detail::YamlNode;

constexpr std::size_t kMaxNameBytes = 39;  // a ring reader name's limit; readers default to component names

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameBytes || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
  });
}

std::string human_size(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t u = 0;
  while (u + 1 < std::size(kUnits) && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++u;
  }
  return std::to_string(bytes) + kUnits[u];
}

bool is_wildcard_host(std::string_view h) { return h.empty() || h == "0.0.0.0" || h == "::" || h == "*"; }

std::string position_text(const Position& p) {
  return p.file + ":" + std::to_string(p.line) + ":" + std::to_string(p.column);
}

// One use of a ring by a component: checked once every ring is known.
struct RingUse {
  std::string ring;
  std::string component;  // `source "statsd"`
  std::string key;        // "input" / "output"
  std::string reader;     // readers only
  bool producer = false;
  Position position;
  std::uint32_t slots = 1;  // reader slots taken: a processor with state also keeps its gate reader
};

// A socket some component listens on.
struct Listener {
  ListenAddress address;
  std::string component;
};

class Loader {
 public:
  Loader(std::string_view text, std::string_view filename, const EnvLookup& env, std::vector<Diagnostic>& main,
         std::vector<Diagnostic>& nested)
      : text_(text), filename_(filename), env_(env), main_(main), d_(main), nested_(nested) {}

  PipelineConfig run() {
    auto root = detail::parse_yaml(text_, filename_, main_);
    if (!root) return config_;
    detail::expand_env(*root, text_, env_, d_);
    if (root->is_null()) {
      d_.add(root->position, "found an empty file, expected a pipeline with rings, sources, processors and exporters");
      return config_;
    }
    Fields top(&*root, "top level", {"pipeline", "run_dir", "rings", "sources", "processors", "exporters"}, d_);
    if (!top.ok()) return config_;
    config_.path = std::string(filename_);
    if (const auto* v = top.get("pipeline")) {
      if (auto s = detail::read_string(*v, "pipeline", d_)) {
        if (valid_name(*s)) {
          config_.pipeline = *s;
        } else {
          d_.add(*v, "pipeline: found " + describe(*v) +
                         ", expected a directory name of letters, digits, '_', '-' and '.' (at most 39 bytes)");
        }
      }
    }
    if (const auto* v = top.get("run_dir")) {
      if (auto s = detail::read_string(*v, "run_dir", d_)) {
        if (s->empty() || s->front() != '/') {
          d_.add(*v, "run_dir: found " + describe(*v) + ", expected an absolute directory such as /dev/shm/ringpipe");
        } else {
          config_.run_dir = *s;
        }
      }
    }
    for_each_entry(top.get("rings"), "rings", [&](const YamlNode& key, const YamlNode& value) { read_ring(key, value); });
    for_each_entry(top.get("sources"), "sources",
                   [&](const YamlNode& key, const YamlNode& value) { read_source(key, value); });
    for_each_entry(top.get("processors"), "processors",
                   [&](const YamlNode& key, const YamlNode& value) { read_processor(key, value); });
    for_each_entry(top.get("exporters"), "exporters",
                   [&](const YamlNode& key, const YamlNode& value) { read_exporter(key, value); });
    if (config_.sources.empty() && config_.processors.empty() && config_.exporters.empty() && d_.count() == 0) {
      d_.add(root->position, "found no sources, processors or exporters, expected at least a source and an exporter");
    }
    check_rings();
    check_listeners();
    return config_;
  }

 private:
  template <class F>
  void for_each_entry(const YamlNode* section, std::string_view what, F&& f) {
    if (section == nullptr || section->is_null()) return;
    if (!section->is_map()) {
      d_.add(*section, std::string(what) + ": found " + describe(*section) + ", expected a map of name: {...}");
      return;
    }
    std::unordered_set<std::string_view> seen;  // views into the tree, which outlives this call
    for (const auto& [key, value] : section->entries) {
      if (!key.is_scalar() || !valid_name(key.scalar)) {
        d_.add(key, std::string(what) + ": found name " + describe(key) +
                        ", expected letters, digits, '_', '-' and '.' (at most 39 bytes)");
        continue;
      }
      if (!seen.insert(key.scalar).second) {
        d_.add(key, std::string(what) + ": found " + quote(key.scalar) + " a second time, expected each name once");
        continue;
      }
      f(key, value);
    }
  }

  // A null value (`raw:`) means "all defaults".
  static const YamlNode* body(const YamlNode& value) { return value.is_null() ? nullptr : &value; }

  template <class T>
  void read_uint_into(const Fields& f, std::string_view key, std::uint64_t min, std::uint64_t max, T& out) {
    if (const auto* v = f.get(key)) {
      if (auto x = detail::read_uint(*v, f.at(key), min, max, d_)) out = static_cast<T>(*x);
    }
  }
  // A size key within [min, max]; `range` words the bounds for the message
  // ("from 1KiB to 1GiB").
  template <class T>
  void read_size_into(const Fields& f, std::string_view key, std::uint64_t min, std::uint64_t max,
                      const std::string& range, T& out) {
    if (const auto* v = f.get(key)) {
      if (auto x = detail::read_size(*v, f.at(key), d_)) {
        if (*x < min || *x > max) {
          d_.add(*v, f.at(key) + ": found " + describe(*v) + ", expected from " + range);
        } else {
          out = static_cast<T>(*x);
        }
      }
    }
  }
  void read_millis_into(const Fields& f, std::string_view key, std::chrono::milliseconds& out, bool positive = false) {
    if (const auto* v = f.get(key)) {
      if (auto x = detail::read_millis(*v, f.at(key), d_)) {
        if (positive && x->count() == 0) {
          d_.add(*v, f.at(key) + ": found " + describe(*v) + ", expected a duration greater than 0");
        } else {
          out = *x;
        }
      }
    }
  }
  void read_string_into(const Fields& f, std::string_view key, std::string& out) {
    if (const auto* v = f.get(key)) {
      if (auto s = detail::read_string(*v, f.at(key), d_)) out = *s;
    }
  }

  void use_ring(const Fields& f, std::string_view key, const std::string& component, bool producer,
                const Position& owner, std::string& out, const std::string& reader = {}) {
    const YamlNode* v = f.get(key);
    if (v == nullptr) {
      d_.add(owner, component + ": found no " + std::string(key) + ", expected " + std::string(key) + ": <ring name>");
      return;
    }
    auto s = detail::read_string(*v, f.at(key), d_);
    if (!s) return;
    out = *s;
    uses_.push_back(RingUse{*s, component, std::string(key), reader, producer, v->position});
  }

  void read_ring(const YamlNode& key, const YamlNode& value) {
    RingConfig r;
    r.name = key.scalar;
    r.position = key.position;
    const std::string where = "ring " + quote(r.name);
    Fields f(body(value), where, {"size", "overflow", "lanes", "max_readers", "max_record", "reader_timeout"}, d_);
    bool geometry_ok = true;  // size, lanes and max_record all readable: check them together
    if (const auto* v = f.get("size")) {
      if (auto x = detail::read_size(*v, f.at("size"), d_)) {
        r.size_bytes = *x;
      } else {
        geometry_ok = false;
      }
    }
    if (const auto* v = f.get("overflow")) {
      if (auto s = detail::read_string(*v, f.at("overflow"), d_)) {
        if (*s == "block") {
          r.overflow = OverflowPolicy::kBlock;
        } else if (*s == "drop") {
          r.overflow = OverflowPolicy::kDrop;
        } else if (*s == "overwrite") {
          r.overflow = OverflowPolicy::kOverwrite;
        } else {
          d_.add(*v, f.at("overflow") + ": found " + describe(*v) + ", expected block, drop or overwrite");
        }
      }
    }
    const std::size_t before_lanes = d_.count();
    read_uint_into(f, "lanes", 1, 256, r.lanes);
    read_uint_into(f, "max_readers", 1, 64, r.max_readers);
    if (const auto* v = f.get("max_record")) {
      if (auto x = detail::read_size(*v, f.at("max_record"), d_)) {
        if (*x > UINT32_MAX) {
          d_.add(*v, f.at("max_record") + ": found " + describe(*v) + ", expected at most 4GiB - 1");
        } else {
          r.max_record_bytes = static_cast<std::uint32_t>(*x);
        }
      }
    }
    geometry_ok = geometry_ok && d_.count() == before_lanes;
    read_millis_into(f, "reader_timeout", r.reader_timeout);
    if (geometry_ok) {
      const std::uint64_t lane = r.lane_capacity_bytes();
      const YamlNode* size_node = f.get("size");
      const Position& at = size_node ? size_node->position : r.position;
      if (r.size_bytes % r.lanes != 0 || lane < 4096 || (lane & (lane - 1)) != 0) {
        std::uint64_t suggested = 4096;
        while (suggested < lane && suggested < (std::uint64_t{1} << 62)) suggested <<= 1;
        d_.add(at, f.at("size") + ": found " + human_size(r.size_bytes) + " over " + std::to_string(r.lanes) +
                       " lanes (" + std::to_string(r.size_bytes / r.lanes) + " bytes each), expected size / lanes " +
                       "to be a power of two of at least 4KiB, e.g. size: " + human_size(suggested * r.lanes));
      } else if (r.max_record_bytes > lane) {
        d_.add(f.get("max_record")->position, f.at("max_record") + ": found " + human_size(r.max_record_bytes) +
                                                  ", expected at most the lane capacity " + human_size(lane));
      }
    }
    config_.rings.push_back(std::move(r));
  }

  void read_listen(const YamlNode& v, const std::string& what, std::optional<Transport> implied,
                   std::vector<ListenAddress>& out, const std::string& component) {
    auto one = [&](const YamlNode& n) {
      auto s = detail::read_string(n, what, d_);
      if (!s) return;
      auto a = parse_listen_address(*s, implied);
      if (!a) {
        d_.add(n, what + ": found " + quote(*s) + " with " + a.error() + ", expected " +
                      (implied ? std::string("host:port such as 0.0.0.0:9102")
                               : std::string("udp://host:port, tcp://host:port, unix:///path or unixgram:///path")));
        return;
      }
      a->position = n.position;
      listeners_.push_back(Listener{*a, component});
      out.push_back(std::move(*a));
    };
    if (v.is_sequence()) {
      for (const auto& item : v.items) one(item);
    } else {
      one(v);
    }
  }

  void read_source(const YamlNode& key, const YamlNode& value) {
    SourceConfig s;
    s.name = key.scalar;
    s.position = key.position;
    const std::string who = "source " + quote(s.name);
    Fields f(body(value), who,
             {"type", "listen", "output", "tags", "read_buffer", "udp_sockets", "max_line_length", "max_connections",
              "max_buffered_size", "idle_timeout", "socket_mode", "write_timeout", "value_field", "name_field", "name", "timestamp_field",
              "timestamp_precision", "kind", "max_labels", "broker", "username", "password", "client_id", "topics",
              "qos", "payload", "topic_template", "ca_file", "cert_file", "key_file", "max_message_size", "path",
              "max_body_size", "targets", "interval", "timeout", "honor_labels", "job", "max_series_per_request",
              "max_labels_per_request", "max_samples_per_request", "max_inflight_body_size"},
             d_);
    if (const auto* v = f.get("type"); v == nullptr) {
      d_.add(s.position,
             who + ": found no type, expected type: statsd, influx, graphite, json, mqtt, prometheus_scrape or remote_write");
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
        d_.add(*v, f.at("listen") +
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
          d_.add(*v, f.at("read_buffer") + ": found " + describe(*v) + ", expected at most 2GiB - 1 (SO_RCVBUF is an int)");
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
  bool keys_only_on(const Fields& f, const SourceConfig& s, SourceType type, std::span<const std::string_view> keys,
                    std::string_view what) {
    if (s.type == type) return true;
    for (const std::string_view k : keys) {
      if (const auto* v = f.get(k)) {
        d_.add(*v, f.at(k) + ": found " + std::string(what) + " on type: " + std::string(source_type_name(s.type)) +
                       ", expected it only on type: " + std::string(source_type_name(type)));
      }
    }
    return false;
  }

  // Calls one(node) for a scalar, or for each item of a sequence; an empty
  // sequence is an error that expects `at_least_one`.
  template <class F>
  void read_list(const YamlNode& v, const std::string& what, std::string_view at_least_one, F&& one) {
    if (!v.is_sequence()) {
      one(v);
      return;
    }
    for (const auto& item : v.items) one(item);
    if (v.items.empty()) d_.add(v, what + ": found an empty list, expected at least one " + std::string(at_least_one));
  }

  // The targets and timing of type: prometheus_scrape; its keys are refused on other types.
  void read_scrape(const Fields& f, SourceConfig& s) {
    static constexpr std::string_view kKeys[] = {"targets", "interval", "timeout", "honor_labels", "job"};
    if (!keys_only_on(f, s, SourceType::kPrometheusScrape, kKeys, "a scrape key")) return;
    ScrapeSourceConfig& c = s.scrape;
    if (const auto* v = f.get("targets"); v == nullptr) {
      d_.add(s.position, "source " + quote(s.name) + ": found no targets, expected targets: [http://host:port/metrics]");
    } else {
      read_list(*v, f.at("targets"), "URL", [&](const YamlNode& n) {
        auto t = detail::read_string(n, f.at("targets"), d_);
        if (!t) return;
        if (auto why = scrape_url_problem(*t); !why.empty()) {
          d_.add(n, f.at("targets") + ": found " + quote(*t) + " with " + why + ", expected http://host:port/path");
          return;
        }
        c.targets.push_back(*t);
      });
    }
    read_millis_into(f, "interval", c.interval, true);
    read_millis_into(f, "timeout", c.timeout, true);
    if (c.timeout > c.interval) {
      const YamlNode* at = f.get("timeout") ? f.get("timeout") : f.get("interval");
      d_.add(at ? at->position : s.position, "source " + quote(s.name) + ": found timeout " +
                                                 std::to_string(c.timeout.count()) + "ms over interval " +
                                                 std::to_string(c.interval.count()) +
                                                 "ms, expected timeout at most the interval");
    }
    read_size_into(f, "max_body_size", 1024, std::uint64_t{1} << 30, "1KiB to 1GiB", c.max_body_bytes);
    read_uint_into(f, "max_labels", 1, 64, c.max_labels);
    if (const auto* v = f.get("honor_labels")) {
      if (auto b = detail::read_bool(*v, f.at("honor_labels"), d_)) c.honor_labels = *b;
    }
    read_string_into(f, "job", c.job);
  }

  // Why `url` is not http://host[:port][/path] ("" when it is).
  static std::string scrape_url_problem(std::string_view url) {
    if (url.starts_with("https://")) return "https (not supported)";
    if (!url.starts_with("http://")) return "no http:// scheme";
    std::string_view authority = url.substr(7);
    authority = authority.substr(0, authority.find_first_of("/?#"));
    if (authority.empty()) return "no host";
    std::string_view port;
    if (authority.front() == '[') {
      const std::size_t close = authority.find(']');
      if (close == std::string_view::npos || close == 1) return "a bad IPv6 literal";
      const std::string_view rest = authority.substr(close + 1);
      if (!rest.empty() && rest.front() != ':') return "junk after the IPv6 literal";
      port = rest.empty() ? std::string_view() : rest.substr(1);
      if (!rest.empty() && port.empty()) return "an empty port";
    } else {
      const std::size_t colon = authority.rfind(':');
      if (colon == 0) return "no host";
      if (colon != std::string_view::npos) {
        port = authority.substr(colon + 1);
        if (port.empty()) return "an empty port";
      }
    }
    std::uint16_t p = 0;
    if (!port.empty() && !parse_port(port, p)) return "a bad port";
    return {};
  }

  // The HTTP endpoint of type: remote_write; its keys are refused on other types.
  void read_remote_write(const Fields& f, SourceConfig& s) {
    static constexpr std::string_view kKeys[] = {"path", "max_series_per_request", "max_labels_per_request",
                                                 "max_samples_per_request", "max_inflight_body_size"};
    if (!keys_only_on(f, s, SourceType::kRemoteWrite, kKeys, "a remote_write key")) return;
    RemoteWriteSourceConfig& r = s.remote_write;
    for (std::size_t i = 0; i < s.listen.size(); ++i) {
      const ListenAddress& a = s.listen[i];
      if (a.transport != Transport::kTcp) {
        d_.add(a.position, f.at("listen") + ": found " + quote(a.to_string()) +
                               ", expected a TCP host:port such as 127.0.0.1:9201 on type: remote_write");
      } else if (i > 0) {
        d_.add(a.position, f.at("listen") + ": found a second address, expected one host:port on type: remote_write");
      }
    }
    if (const auto* v = f.get("path")) {
      if (auto text = detail::read_string(*v, f.at("path"), d_)) {
        if (text->empty() || (*text)[0] != '/' || text->find_first_of(" ?#") != std::string::npos) {
          d_.add(*v, f.at("path") + ": found " + describe(*v) + ", expected an URL path such as /api/v1/write");
        } else {
          r.path = *text;
        }
      }
    }
    read_size_into(f, "max_body_size", 1024, 1u << 30, "1KiB to 1GiB", r.max_body_bytes);
    read_uint_into(f, "max_labels", 1, 64, r.max_labels);
    read_uint_into(f, "max_series_per_request", 1, 100'000'000, r.max_series_per_request);
    read_uint_into(f, "max_labels_per_request", 1, 1'000'000'000, r.max_labels_per_request);
    read_uint_into(f, "max_samples_per_request", 1, 1'000'000'000, r.max_samples_per_request);
    read_size_into(f, "max_inflight_body_size", r.max_body_bytes, std::uint64_t{64} << 30,
                   "max_body_size (" + std::to_string(r.max_body_bytes) + " bytes) to 64GiB", r.max_inflight_body_bytes);
  }

  // The broker, subscriptions and payload of type: mqtt; its keys are refused on other types.
  void read_mqtt(const Fields& f, SourceConfig& s) {
    static constexpr std::string_view kKeys[] = {"broker",  "username",       "password", "client_id",
                                                 "topics",  "qos",            "payload",  "topic_template",
                                                 "ca_file", "cert_file",      "key_file", "max_message_size"};
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
          if (ok && !rest.empty()) rest.remove_prefix(1);
          else rest = {};
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
        d_.add(*f.get("client_id"), f.at("client_id") + ": found " + std::to_string(m.client_id.size()) +
                                        " bytes, expected at most 256");
      }
    }
    if (const auto* v = f.get("topics"); v == nullptr) {
      d_.add(s.position, "source " + quote(s.name) + ": found no topics, expected topics: [sensors/#]");
    } else {
      read_list(*v, f.at("topics"), "topic filter", [&](const YamlNode& n) {
        auto t = detail::read_string(n, f.at("topics"), d_);
        if (!t) return;
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
        m.topic_template.find("/+name") == std::string::npos && !m.topic_template.starts_with("+name")) {
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

  static bool parse_port(std::string_view text, std::uint16_t& out) {
    if (text.empty() || text.size() > 5) return false;
    std::uint32_t n = 0;
    for (const char c : text) {
      if (c < '0' || c > '9') return false;
      n = n * 10 + static_cast<std::uint32_t>(c - '0');
    }
    if (n == 0 || n > 65535) return false;
    out = static_cast<std::uint16_t>(n);
    return true;
  }

  // MQTT's filter rules: non-empty, '+' and '#' whole levels, '#' only last.
  static bool valid_topic_filter(std::string_view t) {
    if (t.empty()) return false;
    std::size_t start = 0;
    for (;;) {
      const std::size_t slash = t.find('/', start);
      const std::string_view level = t.substr(start, slash == std::string_view::npos ? t.npos : slash - start);
      if (level.find_first_of("+#") != std::string_view::npos && level != "+" && level != "#") return false;
      if (level == "#" && slash != std::string_view::npos) return false;
      if (slash == std::string_view::npos) return true;
      start = slash + 1;
    }
  }

  // Why a topic_template is unusable ("" = fine); the rules of ingest::TopicTemplate.
  static std::string topic_template_problem(std::string_view t) {
    std::vector<std::string_view> labels;
    std::size_t start = 0;
    bool rest = false;
    for (;;) {
      const std::size_t slash = t.find('/', start);
      const std::string_view level = t.substr(start, slash == std::string_view::npos ? t.npos : slash - start);
      if (rest) return "'#' before the last level";
      if (level == "#") {
        rest = true;
      } else if (level.size() > 1 && level[0] == '+') {
        const std::string_view key = level.substr(1);
        if (key.find_first_of("+#") != std::string_view::npos) return "'+' or '#' inside a label name";
        if (std::find(labels.begin(), labels.end(), key) != labels.end())
          return "label \"" + std::string(key) + "\" twice";
        labels.push_back(key);
        const bool has_name = std::find(labels.begin(), labels.end(), "name") != labels.end();
        if (labels.size() - (has_name ? 1 : 0) > 64) return "more than 64 labels";
      } else if (level != "+" && level.find_first_of("+#") != std::string_view::npos) {
        return "'+' or '#' inside a level";
      }
      if (slash == std::string_view::npos) return {};
      start = slash + 1;
    }
  }

  // The field mapping of type: json; its keys are refused on other types.
  void read_json_mapping(const Fields& f, SourceConfig& s) {
    static constexpr std::string_view kKeys[] = {"value_field", "name_field",          "name",      "timestamp_field",
                                                 "timestamp_precision", "kind", "max_labels"};
    if (s.type != SourceType::kJson && s.type != SourceType::kMqtt) {
      for (const std::string_view k : kKeys) {
        // remote_write and prometheus_scrape read max_labels themselves.
        if (k == "max_labels" && (s.type == SourceType::kRemoteWrite || s.type == SourceType::kPrometheusScrape)) continue;
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
      d_.add(f.get("max_line_length")->position,
             f.at("max_line_length") + ": found " + describe(*f.get("max_line_length")) +
                 ", expected at most 1MiB on type: json");
    }
  }

  void read_processor(const YamlNode& key, const YamlNode& value) {
    ProcessorConfig p;
    p.name = key.scalar;
    p.reader = p.name;
    p.position = key.position;
    const std::string who = "processor " + quote(p.name);
    Fields f(body(value), who,
             {"type", "input", "output", "reader", "mapping_config", "cache_size", "cache_type", "shards",
              "flush_interval", "ttl", "max_series", "max_series_per_metric", "observer_type", "quantiles", "buckets",
              "summary_max_age", "summary_age_buckets", "summary_buf_cap", "native_histogram_bucket_factor",
              "native_histogram_max_buckets", "state", "state_dir", "max_metrics", "max_name_length",
              "quarantine_after_crashes"},
             d_);
    if (const auto* v = f.get("type"); v == nullptr) {
      d_.add(p.position, who + ": found no type, expected type: aggregate");
    } else if (auto t = detail::read_string(*v, f.at("type"), d_); t && *t != "aggregate") {
      d_.add(*v, f.at("type") + ": found " + describe(*v) + ", expected aggregate");
    }
    read_reader(f, p.reader);
    use_ring(f, "input", who, false, p.position, p.input, p.reader);
    use_ring(f, "output", who, true, p.position, p.output);
    if (!p.input.empty() && p.input == p.output) {
      d_.add(f.get("output")->position, f.at("output") + ": found " + quote(p.output) +
                                            ", the processor's own input, expected a different ring");
    }
    read_uint_into(f, "cache_size", 0, 100'000'000, p.mapping_cache.size);
    if (const auto* v = f.get("cache_type")) {
      if (auto s = detail::read_string(*v, f.at("cache_type"), d_)) {
        if (*s == "lru") {
          p.mapping_cache.type = CacheType::kLru;
        } else if (*s == "random") {
          p.mapping_cache.type = CacheType::kRandom;
        } else {
          d_.add(*v, f.at("cache_type") + ": found " + describe(*v) + ", expected lru or random");
        }
      }
    }
    read_uint_into(f, "shards", 1, 256, p.shards);
    read_millis_into(f, "flush_interval", p.flush_interval, true);
    read_millis_into(f, "ttl", p.ttl);
    read_uint_into(f, "max_series", 0, UINT64_MAX, p.max_series);
    read_uint_into(f, "max_series_per_metric", 0, UINT64_MAX, p.max_series_per_metric);
    read_uint_into(f, "max_metrics", 1, 100'000'000, p.max_metrics);
    if (const auto* v = f.get("state")) {
      if (auto x = detail::read_bool(*v, f.at("state"), d_)) p.state = *x;
    }
    read_string_into(f, "state_dir", p.state_dir);
    read_size_into(f, "max_name_length", 1, 16u << 20, "1 byte to 16MiB", p.max_name_length);
    read_uint_into(f, "quarantine_after_crashes", 0, 1000, p.quarantine_after_crashes);
    if (p.state) {
      for (RingUse& u : uses_)
        if (u.component == who && u.key == "input") u.slots = 2;
      // The gate reader is named <reader>.c, and a reader name is at most 39 bytes.
      if (p.reader.size() + 2 > kMaxNameBytes) {
        d_.add(p.position, who + ": found reader name " + quote(p.reader) + " (" + std::to_string(p.reader.size()) +
                               " bytes), expected at most " + std::to_string(kMaxNameBytes - 2) +
                               " bytes with state: true (its gate reader is named " + quote(p.reader + ".c") + ")");
      }
    }
    if (!p.state_dir.empty() && std::filesystem::path(p.state_dir).is_relative()) {
      p.state_dir = (std::filesystem::path(std::string(filename_)).parent_path() / p.state_dir).lexically_normal().string();
    }
    if (const auto* v = f.get("observer_type")) {
      if (auto o = detail::read_observer_type(*v, f.at("observer_type"), d_)) p.observer_type = *o;
    }
    if (const auto* v = f.get("quantiles")) {
      if (auto q = detail::read_quantiles(*v, f.at("quantiles"), d_)) p.summary.quantiles = std::move(*q);
    }
    if (const auto* v = f.get("buckets")) {
      if (auto b = detail::read_buckets(*v, f.at("buckets"), d_)) p.histogram.buckets = std::move(*b);
    }
    if (p.summary.quantiles.empty()) p.summary.quantiles.assign(std::begin(kDefaultQuantiles), std::end(kDefaultQuantiles));
    if (p.histogram.buckets.empty()) p.histogram.buckets.assign(std::begin(kDefaultBuckets), std::end(kDefaultBuckets));
    p.summary.max_age = kDefaultSummaryMaxAge;
    p.summary.age_buckets = kDefaultSummaryAgeBuckets;
    p.summary.buf_cap = kDefaultSummaryBufCap;
    if (const auto* v = f.get("summary_max_age")) {
      if (auto t = detail::read_duration(*v, f.at("summary_max_age"), false, d_)) p.summary.max_age = *t;
    }
    read_uint_into(f, "summary_age_buckets", 1, 1000, p.summary.age_buckets);
    read_uint_into(f, "summary_buf_cap", 1, 1'000'000, p.summary.buf_cap);
    if (const auto* v = f.get("native_histogram_bucket_factor")) {
      if (auto x = detail::read_double(*v, f.at("native_histogram_bucket_factor"), d_)) {
        if (*x != 0 && *x <= 1) {
          d_.add(*v, f.at("native_histogram_bucket_factor") + ": found " + describe(*v) +
                         ", expected 0 (off) or a factor greater than 1 such as 1.1");
        } else {
          p.histogram.native_histogram_bucket_factor = *x;
        }
      }
    }
    read_uint_into(f, "native_histogram_max_buckets", 0, UINT32_MAX, p.histogram.native_histogram_max_buckets);
    if (const auto* v = f.get("mapping_config")) read_mapping_config(*v, f.at("mapping_config"), p);
    config_.processors.push_back(std::move(p));
  }

  void read_reader(const Fields& f, std::string& reader) {
    if (const auto* v = f.get("reader")) {
      if (auto s = detail::read_string(*v, f.at("reader"), d_)) {
        if (valid_name(*s)) {
          reader = *s;
        } else {
          d_.add(*v, f.at("reader") + ": found " + describe(*v) +
                         ", expected letters, digits, '_', '-' and '.' (at most 39 bytes)");
        }
      }
    }
  }

  void read_mapping_config(const YamlNode& v, const std::string& what, ProcessorConfig& p) {
    auto s = detail::read_string(v, what, d_);
    if (!s) return;
    if (s->empty()) return;  // explicitly no mapping file
    std::filesystem::path path(*s);
    if (path.is_relative()) path = std::filesystem::path(std::string(filename_)).parent_path() / path;
    p.mapping_config = path.lexically_normal().string();
    auto mapping = load_mapping_file(p.mapping_config);
    if (mapping) {
      p.mapping = std::move(*mapping);
      return;
    }
    for (auto& diag : mapping.error().diagnostics) {
      if (diag.position.line == 0) {  // the file itself could not be read: point at the reference
        d_.add(v, what + ": found " + quote(*s) + " but cannot read " + p.mapping_config + ": " +
                      diag.message.substr(diag.message.find(": ") + 2) +
                      ", expected a readable statsd_exporter mapping file");
      } else {
        nested_.push_back(std::move(diag));
      }
    }
  }

  void read_tls(const YamlNode& v, const std::string& what, bool client, std::optional<TlsConfig>& out) {
    Fields f(&v, what,
             client ? std::initializer_list<std::string_view>{"cert_file", "key_file", "ca_file", "insecure_skip_verify"}
                    : std::initializer_list<std::string_view>{"cert_file", "key_file", "ca_file"},
             d_);
    if (!f.ok()) return;
    TlsConfig t;
    read_string_into(f, "cert_file", t.cert_file);
    read_string_into(f, "key_file", t.key_file);
    read_string_into(f, "ca_file", t.ca_file);
    if (const auto* b = f.get("insecure_skip_verify")) {
      if (auto x = detail::read_bool(*b, f.at("insecure_skip_verify"), d_)) t.insecure_skip_verify = *x;
    }
    if (t.cert_file.empty() != t.key_file.empty()) {
      d_.add(v, what + ": found " + std::string(t.cert_file.empty() ? "key_file" : "cert_file") +
                    " alone, expected cert_file and key_file together");
    } else if (!client && t.cert_file.empty()) {
      d_.add(v, what + ": found no cert_file, expected cert_file and key_file for a TLS listener");
    }
    out = std::move(t);
  }

  void read_exporter(const YamlNode& key, const YamlNode& value) {
    ExporterConfig e;
    e.name = key.scalar;
    e.reader = e.name;
    e.position = key.position;
    const std::string who = "exporter " + quote(e.name);
    // The type decides which keys are known; read it first.
    std::optional<ExporterType> type;
    const YamlNode* type_node = nullptr;
    if (value.is_map()) {
      for (const auto& [k, v] : value.entries) {
        if (k.is_scalar() && k.scalar == "type") type_node = &v;
      }
    }
    if (type_node == nullptr) {
      d_.add(e.position, who + ": found no type, expected type: prometheus or remote_write");
    } else if (type_node->is_scalar() && type_node->scalar == "prometheus") {
      type = ExporterType::kPrometheus;
    } else if (type_node->is_scalar() && type_node->scalar == "remote_write") {
      type = ExporterType::kRemoteWrite;
    } else {
      d_.add(*type_node, who + " type: found " + describe(*type_node) + ", expected prometheus or remote_write");
    }
    e.type = type.value_or(ExporterType::kPrometheus);
    const auto prometheus_keys = {std::string_view("type"), std::string_view("input"), std::string_view("reader"),
                                  std::string_view("listen"), std::string_view("path"), std::string_view("tls"),
                                  std::string_view("basic_auth_users"), std::string_view("gating"),
                                  std::string_view("max_connections"), std::string_view("header_timeout"),
                                  std::string_view("quarantine_after_crashes")};
    const auto remote_keys = {std::string_view("type"), std::string_view("input"), std::string_view("reader"),
                              std::string_view("url"), std::string_view("batch_size"), std::string_view("batch_time"),
                              std::string_view("max_in_flight"), std::string_view("timeout"),
                              std::string_view("retry_min_backoff"), std::string_view("retry_max_backoff"),
                              std::string_view("headers"), std::string_view("basic_auth"),
                              std::string_view("bearer_token"), std::string_view("tls"), std::string_view("gating")};
    if (!type) {
      // Unknown type: check nothing type-specific, but still the common keys.
      Fields f(body(value), who, {"type", "input", "reader"}, d_quiet_);
      read_reader(f, e.reader);
      use_ring(f, "input", who, false, e.position, e.input, e.reader);
      config_.exporters.push_back(std::move(e));
      return;
    }
    Fields f(body(value), who, *type == ExporterType::kPrometheus ? prometheus_keys : remote_keys, d_);
    read_reader(f, e.reader);
    // A push exporter may stall for as long as its endpoint is down: by
    // default it must not hold back the ring's producer and its other readers.
    e.gating = *type == ExporterType::kPrometheus;
    if (const auto* v = f.get("gating")) {
      if (auto b = detail::read_bool(*v, f.at("gating"), d_)) e.gating = *b;
    }
    use_ring(f, "input", who, false, e.position, e.input, e.reader);
    if (*type == ExporterType::kPrometheus) {
      auto& p = e.prometheus;
      std::vector<ListenAddress> addresses;
      if (const auto* v = f.get("listen")) {
        if (v->is_sequence()) {
          d_.add(*v, f.at("listen") + ": found a list, expected one host:port such as 0.0.0.0:9102");
        } else {
          read_listen(*v, f.at("listen"), Transport::kTcp, addresses, who);
        }
      } else {
        ListenAddress a{Transport::kTcp, "0.0.0.0", kPrometheusDefaultPort, "", e.position};
        listeners_.push_back(Listener{a, who});
        addresses.push_back(a);
      }
      if (!addresses.empty()) {
        p.listen = addresses.front();
        if (p.listen.transport != Transport::kTcp) {
          d_.add(p.listen.position, f.at("listen") + ": found " + quote(p.listen.to_string()) +
                                        ", expected a TCP host:port such as 0.0.0.0:9102");
        } else if (p.listen.host.find(':') != std::string::npos) {
          // The HTTP server (Debian's civetweb) is built without IPv6.
          d_.add(p.listen.position, f.at("listen") + ": found " + quote(p.listen.to_string()) +
                                        ", expected an IPv4 address or host name such as 0.0.0.0:9102 "
                                        "(the HTTP server has no IPv6 support)");
        }
      }
      if (const auto* v = f.get("path")) {
        if (auto s = detail::read_string(*v, f.at("path"), d_)) {
          if (s->empty() || s->front() != '/') {
            d_.add(*v, f.at("path") + ": found " + describe(*v) + ", expected a path starting with '/'");
          } else {
            p.path = *s;
          }
        }
      }
      if (const auto* v = f.get("tls")) read_tls(*v, f.at("tls"), false, p.tls);
      read_uint_into(f, "max_connections", 4, 16384, p.max_connections);
      read_millis_into(f, "header_timeout", p.header_timeout);
      if (const auto* v = f.get("header_timeout"); v != nullptr && p.header_timeout.count() < 100) {
        d_.add(*v, f.at("header_timeout") + ": found " + describe(*v) + ", expected at least 100ms");
        p.header_timeout = std::chrono::milliseconds(5000);
      }
      read_uint_into(f, "quarantine_after_crashes", 0, 1000, p.quarantine_after_crashes);
      if (const auto* v = f.get("basic_auth_users")) {
        if (!v->is_map()) {
          d_.add(*v, f.at("basic_auth_users") + ": found " + describe(*v) + ", expected a map of user: password");
        } else {
          for (const auto& [user, password] : v->entries) {
            auto u = detail::read_string(user, f.at("basic_auth_users"), d_);
            auto pw = detail::read_string(password, f.at("basic_auth_users") + " " + (u ? *u : std::string()), d_);
            if (u && u->find(':') != std::string::npos) {
              d_.add(user, f.at("basic_auth_users") + ": found user " + quote(*u) + ", expected a name without ':'");
            } else if (u && pw) {
              p.basic_auth_users.push_back(BasicAuthUser{*u, *pw});
            }
          }
        }
      }
    } else {
      read_remote_write(f, who, e);
    }
    config_.exporters.push_back(std::move(e));
  }

  void read_remote_write(const Fields& f, const std::string& who, ExporterConfig& e) {
    auto& r = e.remote_write;
    if (const auto* v = f.get("url"); v == nullptr) {
      d_.add(e.position, who + ": found no url, expected url: http://host:port/api/v1/write");
    } else if (auto s = detail::read_string(*v, f.at("url"), d_)) {
      std::string_view u = *s;
      std::string_view rest;
      if (u.rfind("http://", 0) == 0) {
        rest = u.substr(7);
      } else if (u.rfind("https://", 0) == 0) {
        rest = u.substr(8);
      }
      const std::string_view authority = rest.substr(0, rest.find('/'));
      const auto colon = authority.rfind(':');
      const bool bracketed = !authority.empty() && authority.front() == '[';
      bool port_ok = true;
      if (colon != std::string_view::npos && (!bracketed || authority.find(']') < colon)) {
        const auto port = detail::parse_uint(authority.substr(colon + 1));
        port_ok = port && *port >= 1 && *port <= 65535;
      }
      if (rest.empty() || authority.empty() || authority.front() == ':' || !port_ok) {
        d_.add(*v, f.at("url") + ": found " + describe(*v) + ", expected an http:// or https:// URL with a host");
      } else {
        r.url = *s;
      }
    }
    read_uint_into(f, "batch_size", 1, 1'000'000, r.batch_size);
    read_millis_into(f, "batch_time", r.batch_time, true);
    read_uint_into(f, "max_in_flight", 1, 1024, r.max_in_flight);
    read_millis_into(f, "timeout", r.timeout, true);
    read_millis_into(f, "retry_min_backoff", r.retry_min_backoff, true);
    read_millis_into(f, "retry_max_backoff", r.retry_max_backoff, true);
    if (r.retry_min_backoff > r.retry_max_backoff && f.has("retry_min_backoff")) {
      d_.add(*f.get("retry_min_backoff"), f.at("retry_min_backoff") + ": found " +
                                              describe(*f.get("retry_min_backoff")) +
                                              ", expected at most retry_max_backoff (" +
                                              std::to_string(r.retry_max_backoff.count()) + "ms)");
    }
    if (const auto* v = f.get("headers")) {
      if (!v->is_map()) {
        d_.add(*v, f.at("headers") + ": found " + describe(*v) + ", expected a map of header: value");
      } else {
        for (const auto& [k, val] : v->entries) {
          auto name = detail::read_string(k, f.at("headers"), d_);
          auto text = detail::read_string(val, f.at("headers") + " " + (name ? *name : std::string()), d_);
          const bool token = name && !name->empty() && std::all_of(name->begin(), name->end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || std::string_view("!#$%&'*+-.^_`|~").find(c) !=
                                                                           std::string_view::npos;
          });
          if (name && !token) {
            d_.add(k, f.at("headers") + ": found header name " + quote(*name) + ", expected an HTTP token");
          } else if (name && text) {
            r.headers[*name] = *text;
          }
        }
      }
    }
    if (const auto* v = f.get("basic_auth")) {
      Fields b(v, f.at("basic_auth"), {"username", "password"}, d_);
      if (b.ok()) {
        BasicAuthUser user;
        read_string_into(b, "username", user.username);
        read_string_into(b, "password", user.password);
        if (user.username.empty()) d_.add(*v, f.at("basic_auth") + ": found no username, expected username: <name>");
        r.basic_auth = std::move(user);
      }
    }
    read_string_into(f, "bearer_token", r.bearer_token);
    if (r.basic_auth && f.has("bearer_token")) {
      d_.add(*f.get("bearer_token"), f.at("bearer_token") +
                                         ": found both basic_auth and bearer_token, expected at most one of them");
    }
    if (const auto* v = f.get("tls")) {
      read_tls(*v, f.at("tls"), true, r.tls);
      if (!r.url.empty() && r.url.rfind("https://", 0) != 0) {
        d_.add(*v, f.at("tls") + ": found tls with url " + quote(r.url) + ", expected an https:// url");
      }
    }
  }

  // Hash lookups throughout: linear in rings and uses, however many there are.
  void check_rings() {
    std::string names;
    std::unordered_map<std::string_view, std::vector<const RingUse*>> uses_of;  // ring name -> its uses, in order
    for (const auto& r : config_.rings) {
      names += (names.empty() ? "" : ", ") + r.name;
      uses_of.try_emplace(r.name);
    }
    for (const auto& use : uses_) {
      if (const auto it = uses_of.find(use.ring); it != uses_of.end()) {
        it->second.push_back(&use);
      } else {
        d_.add(use.position, use.component + " " + use.key + ": found ring " + quote(use.ring) +
                                 ", which is not defined under rings, expected " +
                                 (names.empty() ? std::string("a ring defined under rings") : "one of: " + names));
      }
    }
    for (const auto& r : config_.rings) {
      std::size_t producers = 0;
      std::vector<const RingUse*> readers;
      std::unordered_map<std::string_view, const RingUse*> first_reader;  // reader name -> its first use
      std::uint64_t slots = 0;
      for (const RingUse* u : uses_of[r.name]) {
        const RingUse& use = *u;
        if (use.producer) {
          ++producers;
        } else {
          const auto [first, fresh] = first_reader.try_emplace(use.reader, &use);
          if (!fresh) {
            d_.add(use.position, use.component + " " + use.key + ": found reader name " + quote(use.reader) +
                                     " already used on ring " + quote(r.name) + " by " + first->second->component +
                                     ", expected a distinct reader: name");
          }
          readers.push_back(&use);
          slots += use.slots;
        }
      }
      const std::string where = "ring " + quote(r.name);
      if (producers == 0) {
        d_.add(r.position, where + ": found no producer (no source or processor has output: " + r.name +
                               "), expected at least one");
      }
      if (readers.empty()) {
        d_.add(r.position, where + ": found no reader (no processor or exporter has input: " + r.name +
                               "), expected at least one");
      } else if (slots > r.max_readers) {
        // A processor with state keeps a second (gate) reader, so it counts twice.
        d_.add(r.position, where + ": found " + std::to_string(readers.size()) + " readers taking " +
                               std::to_string(slots) + " reader slots, expected at most max_readers (" +
                               std::to_string(r.max_readers) + ")");
      }
    }
  }

  void check_listeners() {
    for (std::size_t i = 0; i < listeners_.size(); ++i) {
      const ListenAddress& a = listeners_[i].address;
      for (std::size_t j = 0; j < i; ++j) {
        const ListenAddress& b = listeners_[j].address;
        const bool unix_a = a.transport == Transport::kUnix || a.transport == Transport::kUnixgram;
        const bool unix_b = b.transport == Transport::kUnix || b.transport == Transport::kUnixgram;
        bool clash = false;
        std::string what;
        if (unix_a && unix_b) {
          clash = a.path == b.path;
          what = "socket " + a.path;
        } else if (!unix_a && !unix_b && a.transport == b.transport && a.port != 0 && a.port == b.port) {
          clash = a.host == b.host || is_wildcard_host(a.host) || is_wildcard_host(b.host);
          what = "port " + std::to_string(a.port) + "/" + std::string(transport_name(a.transport));
        }
        if (clash) {
          d_.add(a.position, listeners_[i].component + " listen: found " + what + " already used by " +
                                 listeners_[j].component + " (" + position_text(b.position) +
                                 "), expected each address once");
          break;
        }
      }
    }
  }

  std::string_view text_;
  std::string_view filename_;
  const EnvLookup& env_;
  std::vector<Diagnostic>& main_;
  Diags d_;
  std::vector<Diagnostic> quiet_;
  Diags d_quiet_{quiet_};
  std::vector<Diagnostic>& nested_;
  PipelineConfig config_;
  std::vector<RingUse> uses_;
  std::vector<Listener> listeners_;
};

std::optional<std::string> process_env(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

}  // namespace

ConfigResult<PipelineConfig> parse_pipeline(std::string_view text, std::string_view filename, const EnvLookup& env) {
  std::vector<Diagnostic> main;
  std::vector<Diagnostic> nested;
  Loader loader(text, filename, env, main, nested);
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

ConfigResult<PipelineConfig> parse_pipeline(std::string_view text, std::string_view filename) {
  return parse_pipeline(text, filename, EnvLookup(process_env));
}

ConfigResult<PipelineConfig> load_pipeline(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int saved = errno;
    return tl::unexpected(ConfigError{{Diagnostic{
        Position{path, 0, 0}, "cannot read pipeline file: " + std::error_code(saved, std::system_category()).message()}}});
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
  raw.size_bytes = 64ull << 20;
  RingConfig metrics;
  metrics.name = "metrics";
  metrics.size_bytes = 16ull << 20;
  p.rings = {raw, metrics};

  SourceConfig statsd;
  statsd.name = "statsd";
  statsd.type = SourceType::kStatsd;
  statsd.listen = {ListenAddress{Transport::kUdp, "0.0.0.0", kStatsdDefaultPort, "", {}},
                   ListenAddress{Transport::kTcp, "0.0.0.0", kStatsdDefaultPort, "", {}}};
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
  prometheus.prometheus.listen = ListenAddress{Transport::kTcp, "0.0.0.0", kPrometheusDefaultPort, "", {}};
  prometheus.prometheus.path = "/metrics";
  p.exporters = {prometheus};
  return p;
}

}  // namespace ringpipe::config
