// statsd_exporter's command line -> the default pipeline.

#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "ringpipe/config/pipeline.hpp"
#include "ringpipe/config/units.hpp"
#include "ringpipe/config/web_config.hpp"
#include "schema.hpp"

namespace ringpipe::config {
namespace {

constexpr std::string_view kCommandLine = "command line";

// Flags that take a value and only tune statsd_exporter's own internals.
// log.level and log.format set up the process's logging: `ringpipe run` and
// `ringpipe component` read them (apps/cli.hpp), not the pipeline.
constexpr std::string_view kIgnoredValueFlags[] = {
    "statsd.event-queue-size",
    "statsd.event-flush-threshold",
    "statsd.event-flush-interval",
    "statsd.udp-packet-queue-size",
    "debug.dump-fsm",
    "log.level",
    "log.format",
};
// Boolean flags accepted and ignored (kingpin also takes --no-<flag>).
// check-config is acted on by `ringpipe run`.
constexpr std::string_view kIgnoredBoolFlags[] = {"web.enable-lifecycle", "check-config", "web.systemd-socket"};

// statsd_exporter's flags for features ringpipe does not have: refused with
// what to do instead, so that nothing silently goes missing.
struct RefusedFlag {
  std::string_view name;
  std::string_view why;
};
constexpr RefusedFlag kRefusedFlags[] = {
    {"statsd.relay.address",
     "relaying is not supported by ringpipe, expected no --statsd.relay.* flag (send the StatsD stream to the "
     "relay target from its clients, or keep statsd_exporter in front as the relay)"},
    {"statsd.relay.packet-length",
     "relaying is not supported by ringpipe, expected no --statsd.relay.* flag (send the StatsD stream to the "
     "relay target from its clients, or keep statsd_exporter in front as the relay)"},
};

const RefusedFlag* refused_flag(std::string_view name) {
  for (const RefusedFlag& f : kRefusedFlags)
    if (f.name == name) return &f;
  return nullptr;
}

constexpr std::string_view kTagFlags[] = {"statsd.parse-dogstatsd-tags", "statsd.parse-influxdb-tags",
                                          "statsd.parse-librato-tags", "statsd.parse-signalfx-tags"};

constexpr std::string_view kValueFlags[] = {
    "web.listen-address",     "web.telemetry-path",     "statsd.listen-udp",     "statsd.listen-tcp",
    "statsd.listen-unixgram", "statsd.unixsocket-mode", "statsd.mapping-config", "statsd.read-buffer",
    "statsd.cache-size",      "statsd.cache-type",      "web.config.file",
};

template <std::size_t N>
bool contains(const std::string_view (&list)[N], std::string_view s) {
  return std::find(std::begin(list), std::end(list), s) != std::end(list);
}

struct FlagValue {
  std::string value;
  Position position;
};

}  // namespace

std::string pipeline_name_for(const std::vector<ListenAddress>& listen) {
  for (const ListenAddress& a : listen) {
    if (a.transport != Transport::kUdp && a.transport != Transport::kTcp) continue;
    if (a.port == kStatsdDefaultPort || a.port == 0) return "default";
    return "statsd-" + std::to_string(a.port);
  }
  for (const ListenAddress& a : listen) {
    std::string base = a.path.substr(a.path.rfind('/') + 1);
    for (char& c : base)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') c = '_';
    if (base.empty() || base.front() == '.') base = "socket";
    return ("statsd-" + base).substr(0, 39);
  }
  return "default";
}

bool is_statsd_exporter_flag(std::string_view arg) {
  if (arg.rfind("--", 0) != 0) return false;
  std::string_view name = arg.substr(2);
  name = name.substr(0, name.find('='));
  if (contains(kValueFlags, name) || contains(kIgnoredValueFlags, name) || refused_flag(name)) return true;
  const std::string_view base = name.rfind("no-", 0) == 0 ? name.substr(3) : name;
  return contains(kTagFlags, base) || contains(kIgnoredBoolFlags, base);
}

ConfigResult<PipelineConfig> pipeline_from_statsd_exporter_flags(std::span<const std::string_view> args) {
  std::vector<Diagnostic> diags;
  std::vector<Diagnostic> nested;
  std::vector<std::uint32_t> column(args.size() + 1, 1);
  for (std::size_t i = 0; i < args.size(); ++i)
    column[i + 1] = column[i] + static_cast<std::uint32_t>(args[i].size()) + 1;
  auto at = [&](std::size_t i) { return Position{std::string(kCommandLine), 1, column[i]}; };
  auto error = [&](std::size_t i, std::string message) { diags.push_back(Diagnostic{at(i), std::move(message)}); };

  // Last value wins, as with kingpin.
  std::vector<std::pair<std::string, FlagValue>> values;
  auto set = [&](std::string name, FlagValue v) {
    for (auto& [n, old] : values) {
      if (n == name) {
        old = std::move(v);
        return;
      }
    }
    values.emplace_back(std::move(name), std::move(v));
  };
  StatsdTagFlavors tags;

  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      error(i, "found " + detail::quote(arg) + ", expected a statsd_exporter flag such as --statsd.listen-udp=:9125");
      continue;
    }
    std::string_view name = arg.substr(2);
    std::optional<std::string_view> inline_value;
    if (const auto eq = name.find('='); eq != std::string_view::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const bool negated = name.rfind("no-", 0) == 0;
    const std::string_view base = negated ? name.substr(3) : name;
    if (contains(kTagFlags, base) || contains(kIgnoredBoolFlags, base)) {
      bool value = !negated;
      if (inline_value) {
        const auto b = detail::parse_bool(*inline_value);
        if (!b || negated) {
          error(i, "found " + detail::quote(arg) + ", expected --" + std::string(base) + ", --no-" + std::string(base) +
                       " or --" + std::string(base) + "=true|false");
          continue;
        }
        value = *b;
      }
      if (base == kTagFlags[0]) tags.dogstatsd = value;
      if (base == kTagFlags[1]) tags.influxdb = value;
      if (base == kTagFlags[2]) tags.librato = value;
      if (base == kTagFlags[3]) tags.signalfx = value;
      continue;
    }
    const bool known = contains(kValueFlags, name);
    if (const RefusedFlag* refused = refused_flag(name)) {
      error(i, "--" + std::string(name) + ": " + std::string(refused->why));
      if (!inline_value && i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) ++i;  // skip its value
      continue;
    }
    if (!known && !contains(kIgnoredValueFlags, name)) {
      error(i,
            "found unknown flag --" + std::string(name) + ", expected statsd_exporter's --statsd.* and --web.* flags");
      if (!inline_value && i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) ++i;  // skip its value
      continue;
    }
    FlagValue v;
    if (inline_value) {
      v = FlagValue{std::string(*inline_value), at(i)};
    } else if (i + 1 < args.size()) {
      ++i;
      v = FlagValue{std::string(args[i]), at(i)};
    } else {
      error(i, "found --" + std::string(name) + " without a value, expected --" + std::string(name) + "=<value>");
      continue;
    }
    if (known) set(std::string(name), std::move(v));
  }

  auto get = [&](std::string_view name) -> const FlagValue* {
    for (const auto& [n, v] : values) {
      if (n == name) return &v;
    }
    return nullptr;
  };
  auto report = [&](const FlagValue& v, std::string message) {
    diags.push_back(Diagnostic{v.position, std::move(message)});
  };

  PipelineConfig p = default_pipeline();
  SourceConfig& source = p.sources.front();
  ProcessorConfig& processor = p.processors.front();
  PrometheusExporterConfig& web = p.exporters.front().prometheus;
  source.tags = tags;
  source.listen.clear();

  auto listener = [&](std::string_view flag, Transport transport, std::string_view fallback) {
    const FlagValue* v = get(flag);
    const std::string text = v ? v->value : std::string(fallback);
    if (text.empty()) return;  // "" disables the listener
    const Position where = v ? v->position : Position{std::string(kCommandLine), 1, 1};
    if (transport == Transport::kUnixgram) {
      if (text.front() != '/') {
        // statsd_exporter takes a path relative to its working directory; make it absolute now.
        char* cwd = ::getcwd(nullptr, 0);
        ListenAddress a{transport, "", 0, std::string(cwd ? cwd : "") + "/" + text, where};
        std::free(cwd);
        source.listen.push_back(std::move(a));
      } else {
        source.listen.push_back(ListenAddress{transport, "", 0, text, where});
      }
      return;
    }
    auto a = parse_listen_address(text, transport);
    if (!a || a->transport != transport) {
      report(*v, "--" + std::string(flag) + ": found " + detail::quote(text) +
                     (a ? std::string() : " with " + a.error()) + ", expected host:port such as :9125");
      return;
    }
    a->position = where;
    source.listen.push_back(std::move(*a));
  };
  listener("statsd.listen-udp", Transport::kUdp, ":9125");
  listener("statsd.listen-tcp", Transport::kTcp, ":9125");
  listener("statsd.listen-unixgram", Transport::kUnixgram, "");
  if (source.listen.empty() && diags.empty()) {
    diags.push_back(Diagnostic{Position{std::string(kCommandLine), 1, 1},
                               "found every listener disabled, expected at least one of --statsd.listen-udp, "
                               "--statsd.listen-tcp or --statsd.listen-unixgram"});
  }

  p.pipeline = pipeline_name_for(source.listen);

  if (const FlagValue* v = get("statsd.unixsocket-mode")) {
    const bool octal = !v->value.empty() && v->value.size() <= 4 &&
                       std::all_of(v->value.begin(), v->value.end(), [](char c) { return c >= '0' && c <= '7'; });
    if (octal) {
      source.socket_mode = static_cast<std::uint32_t>(std::strtoul(v->value.c_str(), nullptr, 8));
    } else {
      report(*v,
             "--statsd.unixsocket-mode: found " + detail::quote(v->value) + ", expected octal permissions such as 755");
    }
  }
  if (const FlagValue* v = get("statsd.read-buffer")) {
    const auto n = parse_size(v->value);
    if (n && *n <= INT32_MAX) {
      source.read_buffer_bytes = *n;
    } else {
      report(*v, "--statsd.read-buffer: found " + detail::quote(v->value) + ", expected a size in bytes below 2GiB");
    }
  }
  if (const FlagValue* v = get("statsd.cache-size")) {
    if (const auto n = detail::parse_uint(v->value)) {
      processor.mapping_cache.size = *n;
    } else {
      report(*v, "--statsd.cache-size: found " + detail::quote(v->value) + ", expected a number of entries");
    }
  }
  if (const FlagValue* v = get("statsd.cache-type")) {
    if (v->value == "lru") {
      processor.mapping_cache.type = CacheType::kLru;
    } else if (v->value == "random") {
      processor.mapping_cache.type = CacheType::kRandom;
    } else {
      report(*v, "--statsd.cache-type: found " + detail::quote(v->value) + ", expected lru or random");
    }
  }
  if (const FlagValue* v = get("web.listen-address")) {
    auto a = parse_listen_address(v->value, Transport::kTcp);
    if (!a || a->transport != Transport::kTcp) {
      report(*v, "--web.listen-address: found " + detail::quote(v->value) + (a ? std::string() : " with " + a.error()) +
                     ", expected host:port such as :9102");
    } else {
      a->position = v->position;
      web.listen = std::move(*a);
    }
  }
  if (const FlagValue* v = get("web.telemetry-path")) {
    if (v->value.empty() || v->value.front() != '/') {
      report(*v, "--web.telemetry-path: found " + detail::quote(v->value) + ", expected a path starting with '/'");
    } else {
      web.path = v->value;
    }
  }
  if (const FlagValue* v = get("web.config.file"); v && !v->value.empty()) {
    auto wc = load_web_config_file(v->value);
    if (wc) {
      web.tls = std::move(wc->tls);
      web.basic_auth_users = std::move(wc->basic_auth_users);
    } else {
      for (auto& d : wc.error().diagnostics) {
        if (d.position.line == 0) {
          report(*v, "--web.config.file: found " + detail::quote(v->value) + " but " + d.message +
                         ", expected a readable web config file");
        } else {
          nested.push_back(std::move(d));
        }
      }
    }
  }
  for (const auto& l : source.listen) {
    if (l.transport == Transport::kTcp && l.port == web.listen.port && l.port != 0) {
      const bool overlap = l.host == web.listen.host || l.host.empty() || l.host == "0.0.0.0" ||
                           web.listen.host.empty() || web.listen.host == "0.0.0.0";
      if (overlap) {
        diags.push_back(
            Diagnostic{l.position, "--statsd.listen-tcp: found port " + std::to_string(l.port) +
                                       "/tcp also used by --web.listen-address, expected each address once"});
      }
    }
  }
  if (const FlagValue* v = get("statsd.mapping-config"); v && !v->value.empty()) {
    processor.mapping_config = v->value;
    auto mapping = load_mapping_file(v->value);
    if (mapping) {
      processor.mapping = std::move(*mapping);
    } else {
      for (auto& d : mapping.error().diagnostics) {
        if (d.position.line == 0) {
          report(*v, "--statsd.mapping-config: found " + detail::quote(v->value) + " but " + d.message +
                         ", expected a readable mapping file");
        } else {
          nested.push_back(std::move(d));
        }
      }
    }
  }
  if (diags.empty() && nested.empty()) return p;
  std::stable_sort(diags.begin(), diags.end(),
                   [](const Diagnostic& a, const Diagnostic& b) { return a.position.column < b.position.column; });
  diags.insert(diags.end(), nested.begin(), nested.end());
  return tl::unexpected(ConfigError{std::move(diags)});
}

}  // namespace ringpipe::config
