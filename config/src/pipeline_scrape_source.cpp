// sources.<name> of type: prometheus_scrape: targets, interval and timeout,
// and the limits of one scrape.
#include <string>

#include "pipeline_loader.hpp"

namespace ringpipe::config::detail {

namespace {

// Why `url` is not http://host[:port][/path] ("" when it is).
std::string scrape_url_problem(std::string_view url) {
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

}  // namespace

// The targets and timing of type: prometheus_scrape; its keys are refused on other types.
void Loader::read_scrape(const Fields& f, SourceConfig& s) {
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
    d_.add(at ? at->position : s.position,
           "source " + quote(s.name) + ": found timeout " + std::to_string(c.timeout.count()) + "ms over interval " +
               std::to_string(c.interval.count()) + "ms, expected timeout at most the interval");
  }
  read_size_into(f, "max_body_size", 1024, std::uint64_t{1} << 30, "1KiB to 1GiB", c.max_body_bytes);
  read_uint_into(f, "max_labels", 1, 64, c.max_labels);
  if (const auto* v = f.get("honor_labels")) {
    if (auto b = detail::read_bool(*v, f.at("honor_labels"), d_)) c.honor_labels = *b;
  }
  read_string_into(f, "job", c.job);
}

}  // namespace ringpipe::config::detail
