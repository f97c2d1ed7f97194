// relabel_configs: Prometheus' <relabel_config> keys, its defaults (action
// replace, separator ";", regex "(.*)", replacement "$1") and its validation
// (relabel::validate), each problem reported at the key it concerns; every
// regex is compiled here, once, with RE2.
#include "relabel_reader.hpp"

#include <utility>
#include <vector>

namespace ringpipe::config::detail {

namespace {

std::optional<relabel::RuleSpec> read_rule(const YamlNode& n, const std::string& where, Diags& d) {
  if (n.is_null()) {
    d.add(n, where +
                 ": found null, expected a map with keys: source_labels, separator, regex, modulus, "
                 "target_label, replacement, action");
    return std::nullopt;
  }
  Fields f(&n, where, {"source_labels", "separator", "regex", "modulus", "target_label", "replacement", "action"}, d);
  if (!f.ok()) return std::nullopt;
  const std::size_t before = d.count();
  relabel::RuleSpec r;
  if (const auto* v = f.get("source_labels")) {
    if (!v->is_sequence()) {
      d.add(*v, f.at("source_labels") + ": found " + describe(*v) + ", expected a list of label names");
    } else {
      for (const YamlNode& item : v->items) {
        if (auto s = read_string(item, f.at("source_labels"), d)) r.source_labels.push_back(std::move(*s));
      }
    }
  }
  // A null string (`regex:`) is what Go's YAML gives Prometheus: an empty
  // regex, which matches only the empty string; the other keys keep their default.
  const auto text = [&](std::string_view key, std::string& out, bool null_is_empty) {
    if (const auto* v = f.get(key)) {
      if (v->is_null()) {
        if (null_is_empty) out.clear();
      } else if (auto s = read_string(*v, f.at(key), d)) {
        out = std::move(*s);
      }
    }
  };
  text("separator", r.separator, false);
  text("regex", r.regex, true);
  text("target_label", r.target_label, false);
  text("replacement", r.replacement, false);
  if (const auto* v = f.get("modulus")) {
    if (auto m = read_uint(*v, f.at("modulus"), 0, UINT64_MAX, d)) r.modulus = *m;
  }
  if (const auto* v = f.get("action")) {
    if (auto s = read_string(*v, f.at("action"), d)) {
      if (auto a = relabel::parse_action(*s)) {
        r.action = *a;
      } else {
        d.add(*v, f.at("action") + ": found " + describe(*v) +
                      ", expected replace, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, "
                      "labelkeep, lowercase or uppercase");
      }
    }
  }
  if (d.count() != before) return std::nullopt;
  if (auto p = relabel::validate(r)) {
    const YamlNode* at = f.get(p->key);
    if (p->key == "regex" && at != nullptr) {
      d.add(*at, f.at("regex") + ": found " + describe(*at) +
                     ", expected a regular expression (RE2, Go syntax): " + p->message);
    } else {
      d.add(at != nullptr ? at->position : n.position, f.at(p->key) + ": " + p->message);
    }
    return std::nullopt;
  }
  return r;
}

}  // namespace

bool read_relabel_configs(const YamlNode& list, const std::string& what, relabel::Rules& out, Diags& d) {
  out = relabel::Rules();
  if (list.is_null()) return true;
  if (!list.is_sequence()) {
    d.add(list, what + ": found " + describe(list) + ", expected a list of {source_labels, regex, action, ...}");
    return false;
  }
  std::vector<relabel::RuleSpec> specs;
  bool ok = true;
  for (std::size_t i = 0; i < list.items.size(); ++i) {
    if (auto r = read_rule(list.items[i], what + "[" + std::to_string(i) + "]", d)) {
      specs.push_back(std::move(*r));
    } else {
      ok = false;
    }
  }
  if (!ok) return false;
  auto rules = relabel::Rules::compile(std::move(specs));
  if (!rules) {  // validated above: only a regex over the memory budget gets here
    d.add(list.items[rules.error().index], what + "[" + std::to_string(rules.error().index) + "] " +
                                               rules.error().problem.key + ": " + rules.error().problem.message);
    return false;
  }
  out = std::move(*rules);
  return true;
}

}  // namespace ringpipe::config::detail
