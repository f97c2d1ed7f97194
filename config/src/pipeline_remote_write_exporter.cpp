// exporters.<name> of type: remote_write: the URL, batching, concurrency,
// timeouts and retry backoff, headers and authentication.
#include <algorithm>
#include <cctype>
#include <string>

#include "pipeline_loader.hpp"

namespace ringpipe::config::detail {

void Loader::read_remote_write(const Fields& f, const std::string& who, ExporterConfig& e) {
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
  if (const auto* v = f.get("batch_time")) {
    // Accepted and ignored until now: say so instead of pretending.
    d_.add(*v, f.at("batch_time") + ": found " + describe(*v) +
                   ", expected no batch_time: each record's samples are sent as soon as the record is read "
                   "(batch_size caps one request), so a partial batch never waits; remove the key");
  }
  read_uint_into(f, "max_in_flight", 1, 1024, r.max_in_flight);
  read_millis_into(f, "timeout", r.timeout, true);
  read_millis_into(f, "retry_min_backoff", r.retry_min_backoff, true);
  read_millis_into(f, "retry_max_backoff", r.retry_max_backoff, true);
  if (r.retry_min_backoff > r.retry_max_backoff && f.has("retry_min_backoff")) {
    d_.add(*f.get("retry_min_backoff"), f.at("retry_min_backoff") + ": found " + describe(*f.get("retry_min_backoff")) +
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
                             return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
                                    std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
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
    d_.add(*f.get("bearer_token"),
           f.at("bearer_token") + ": found both basic_auth and bearer_token, expected at most one of them");
  }
  if (const auto* v = f.get("tls")) {
    read_tls(*v, f.at("tls"), true, r.tls);
    if (!r.url.empty() && r.url.rfind("https://", 0) != 0) {
      d_.add(*v, f.at("tls") + ": found tls with url " + quote(r.url) + ", expected an https:// url");
    }
  }
}

}  // namespace ringpipe::config::detail
