// Typed reads every section of the pipeline file shares: durations into
// milliseconds, strings, ring references, listen addresses, reader names.
#include <algorithm>
#include <cctype>

#include "pipeline_loader.hpp"

namespace ringpipe::config {

bool valid_pipeline_name(std::string_view name) { return detail::valid_name(name); }

}  // namespace ringpipe::config

namespace ringpipe::config::detail {

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameBytes || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
  });
}

bool parse_port(std::string_view text, std::uint16_t& out) {
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

void Loader::read_millis_into(const Fields& f, std::string_view key, std::chrono::milliseconds& out, bool positive) {
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

void Loader::read_string_into(const Fields& f, std::string_view key, std::string& out) {
  if (const auto* v = f.get(key)) {
    if (auto s = detail::read_string(*v, f.at(key), d_)) out = *s;
  }
}

void Loader::use_ring(const Fields& f, std::string_view key, const std::string& component, bool producer,
                      const Position& owner, std::string& out, const std::string& reader) {
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

void Loader::read_listen(const YamlNode& v, const std::string& what, std::optional<Transport> implied,
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

void Loader::read_reader(const Fields& f, std::string& reader) {
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

}  // namespace ringpipe::config::detail
