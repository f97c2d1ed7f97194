#include "ringpipe/config/mapping.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <system_error>

#include <re2/re2.h>

#include "mapping_rules.hpp"
#include "schema.hpp"
#include "yaml_tree.hpp"

namespace ringpipe::config {

std::string_view metric_type_name(MetricType t) noexcept {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kObserver:
      return "observer";
  }
  return "?";
}
std::string_view observer_type_name(ObserverType t) noexcept {
  return t == ObserverType::kSummary ? "summary" : "histogram";
}
std::string_view cache_type_name(CacheType t) noexcept { return t == CacheType::kLru ? "lru" : "random"; }

namespace detail {
namespace {

// A regex's memory budget; processors/src/matcher.cpp compiles with the same.
constexpr std::int64_t kRegexMaxMemBytes = 2 << 20;

bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// [a-zA-Z_](-?[a-zA-Z0-9_])* for the first component; the first character
// may be a digit in later components (statsd_exporter issue 328).
bool valid_component(std::string_view c, bool first) {
  if (c == "*") return true;
  if (c.empty()) return false;
  if (!is_word(c[0]) || (first && std::isdigit(static_cast<unsigned char>(c[0])) != 0)) return false;
  for (std::size_t i = 1; i < c.size(); ++i) {
    if (c[i] == '-') {
      if (i + 1 >= c.size() || !is_word(c[i + 1])) return false;
      continue;
    }
    if (!is_word(c[i])) return false;
  }
  return true;
}

// Skips one $n / ${n} reference at s[i]; returns its length or 0.
std::size_t template_reference(std::string_view s, std::size_t i) {
  if (s[i] != '$') return 0;
  std::size_t j = i + 1;
  if (j < s.size() && s[j] == '{') ++j;
  const std::size_t digits = j;
  while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j])) != 0) ++j;
  if (j == digits) return 0;
  if (j < s.size() && s[j] == '}') ++j;
  return j - i;
}

}  // namespace

bool valid_glob(std::string_view match) {
  std::size_t start = 0;
  bool first = true;
  while (true) {
    const std::size_t dot = match.find('.', start);
    const std::string_view part = match.substr(start, dot == std::string_view::npos ? match.npos : dot - start);
    if (!valid_component(part, first)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
    first = false;
  }
}

bool valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size();) {
    if (const std::size_t ref = template_reference(name, i); ref != 0) {
      i += ref;
      continue;
    }
    if (!is_word(name[i]) || (i == 0 && std::isdigit(static_cast<unsigned char>(name[i])) != 0)) return false;
    ++i;
  }
  return true;
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0])) != 0) return false;
  for (char c : name) {
    if (!is_word(c)) return false;
  }
  return true;
}

// The processors compile rules with RE2 (Go's syntax, as statsd_exporter)
// under the same options, so what passes here compiles there.
std::optional<std::string> regex_problem(std::string_view regex) {
  re2::RE2::Options opts;
  opts.set_log_errors(false);
  opts.set_max_mem(kRegexMaxMemBytes);
  const re2::RE2 compiled(re2::StringPiece(regex.data(), regex.size()), opts);
  if (compiled.ok()) return std::nullopt;
  return compiled.error();
}

std::optional<std::vector<Quantile>> read_quantiles(const YamlNode& n, std::string_view what, Diags& d) {
  if (!n.is_sequence()) {
    d.add(n, std::string(what) + ": found " + describe(n) + ", expected a list of {quantile: 0.99, error: 0.001}");
    return std::nullopt;
  }
  std::vector<Quantile> out;
  bool ok = true;
  for (std::size_t i = 0; i < n.items.size(); ++i) {
    const YamlNode& item = n.items[i];
    const std::string where = std::string(what) + "[" + std::to_string(i) + "]";
    Fields f(&item, where, {"quantile", "error"}, d);
    if (!f.ok()) {
      ok = false;
      continue;
    }
    Quantile q;
    if (const auto* v = f.get("quantile")) {
      const auto x = read_double(*v, f.at("quantile"), d);
      if (x && (*x < 0 || *x > 1)) {
        d.add(*v, f.at("quantile") + ": found " + describe(*v) + ", expected a number from 0 to 1");
        ok = false;
      } else if (x) {
        q.quantile = *x;
      } else {
        ok = false;
      }
    } else {
      d.add(item, where + ": found no quantile, expected quantile: <0..1>");
      ok = false;
    }
    if (const auto* v = f.get("error")) {
      const auto x = read_double(*v, f.at("error"), d);
      if (x && (*x < 0 || *x > 1)) {
        d.add(*v, f.at("error") + ": found " + describe(*v) + ", expected a number from 0 to 1");
        ok = false;
      } else if (x) {
        q.error = *x;
      } else {
        ok = false;
      }
    }
    out.push_back(q);
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::vector<double>> read_buckets(const YamlNode& n, std::string_view what, Diags& d) {
  if (!n.is_sequence()) {
    d.add(n, std::string(what) + ": found " + describe(n) + ", expected a list of increasing numbers");
    return std::nullopt;
  }
  std::vector<double> out;
  bool ok = true;
  for (std::size_t i = 0; i < n.items.size(); ++i) {
    const auto v = read_double(n.items[i], std::string(what) + "[" + std::to_string(i) + "]", d);
    if (!v) {
      ok = false;
      continue;
    }
    if (!out.empty() && *v <= out.back()) {
      d.add(n.items[i], std::string(what) + "[" + std::to_string(i) + "]: found " + describe(n.items[i]) +
                            ", expected a number greater than the previous bucket");
      ok = false;
    }
    out.push_back(*v);
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<ObserverType> read_observer_type(const YamlNode& n, std::string_view what, Diags& d) {
  const auto s = read_string(n, what, d);
  if (!s) return std::nullopt;
  if (*s == "summary") return ObserverType::kSummary;
  if (*s == "histogram") return ObserverType::kHistogram;
  d.add(n, std::string(what) + ": found " + describe(n) + ", expected summary or histogram");
  return std::nullopt;
}

namespace {

std::optional<MatchType> read_match_type(const YamlNode& n, std::string_view what, Diags& d) {
  const auto s = read_string(n, what, d);
  if (!s) return std::nullopt;
  if (*s == "glob") return MatchType::kGlob;
  if (*s == "regex") return MatchType::kRegex;
  d.add(n, std::string(what) + ": found " + describe(n) + ", expected glob or regex");
  return std::nullopt;
}

// What a `summary_options` / `histogram_options` block held, before defaults.
struct WrittenSummary {
  bool present = false;
  SummaryOptions options;
};
struct WrittenHistogram {
  bool present = false;
  HistogramOptions options;
};

WrittenSummary read_summary_options(const YamlNode* n, const std::string& where, Diags& d) {
  WrittenSummary out;
  if (n == nullptr) return out;
  out.present = true;
  Fields f(n, where, {"quantiles", "max_age", "age_buckets", "buf_cap"}, d);
  if (const auto* v = f.get("quantiles")) {
    if (auto q = read_quantiles(*v, f.at("quantiles"), d)) out.options.quantiles = std::move(*q);
  }
  if (const auto* v = f.get("max_age")) {
    if (auto t = read_duration(*v, f.at("max_age"), true, d)) out.options.max_age = *t;
  }
  if (const auto* v = f.get("age_buckets")) {
    if (auto x = read_uint(*v, f.at("age_buckets"), 0, UINT32_MAX, d))
      out.options.age_buckets = static_cast<std::uint32_t>(*x);
  }
  if (const auto* v = f.get("buf_cap")) {
    if (auto x = read_uint(*v, f.at("buf_cap"), 0, UINT32_MAX, d)) out.options.buf_cap = static_cast<std::uint32_t>(*x);
  }
  return out;
}

WrittenHistogram read_histogram_options(const YamlNode* n, const std::string& where, Diags& d) {
  WrittenHistogram out;
  if (n == nullptr) return out;
  out.present = true;
  Fields f(n, where, {"buckets", "native_histogram_bucket_factor", "native_histogram_max_buckets"}, d);
  if (const auto* v = f.get("buckets")) {
    if (auto b = read_buckets(*v, f.at("buckets"), d)) out.options.buckets = std::move(*b);
  }
  if (const auto* v = f.get("native_histogram_bucket_factor")) {
    if (auto x = read_double(*v, f.at("native_histogram_bucket_factor"), d)) {
      if (*x < 0) {
        d.add(*v, f.at("native_histogram_bucket_factor") + ": found " + describe(*v) +
                      ", expected 0 (no native buckets) or a factor greater than 1 such as 1.1");
      } else {
        // client_golang: a factor <= 1 means no native histogram.
        out.options.native_histogram_bucket_factor = *x > 1 ? *x : 0;
      }
    }
  }
  if (const auto* v = f.get("native_histogram_max_buckets")) {
    if (auto x = read_uint(*v, f.at("native_histogram_max_buckets"), 0, UINT32_MAX, d)) {
      out.options.native_histogram_max_buckets = static_cast<std::uint32_t>(*x);
    }
  }
  return out;
}

// observer_type, or the deprecated timer_type when observer_type is absent.
std::optional<ObserverType> read_observer(const Fields& f, Diags& d) {
  std::optional<ObserverType> timer;
  if (const auto* v = f.get("timer_type")) timer = read_observer_type(*v, f.at("timer_type"), d);
  if (const auto* v = f.get("observer_type")) return read_observer_type(*v, f.at("observer_type"), d);
  return timer;
}

void fill_summary(SummaryOptions& s, const SummaryOptions& from) {
  if (s.quantiles.empty()) s.quantiles = from.quantiles;
  if (s.max_age.count() == 0) s.max_age = from.max_age;
  if (s.age_buckets == 0) s.age_buckets = from.age_buckets;
  if (s.buf_cap == 0) s.buf_cap = from.buf_cap;
}

void fill_histogram(HistogramOptions& h, const HistogramOptions& from) {
  if (h.buckets.empty()) h.buckets = from.buckets;
  if (h.native_histogram_bucket_factor == 0) h.native_histogram_bucket_factor = from.native_histogram_bucket_factor;
  if (h.native_histogram_max_buckets == 0) h.native_histogram_max_buckets = from.native_histogram_max_buckets;
}

struct DefaultsRead {
  MappingDefaults defaults;
  bool observer_explicit = false;
};

DefaultsRead read_defaults(const YamlNode* n, Diags& d) {
  DefaultsRead out;
  MappingDefaults& m = out.defaults;
  Fields f(n, "defaults",
           {"observer_type", "timer_type", "buckets", "quantiles", "match_type", "glob_disable_ordering", "ttl",
            "summary_options", "histogram_options"},
           d);
  if (auto o = read_observer(f, d)) {
    m.observer_type = *o;
    out.observer_explicit = true;
  }
  if (const auto* v = f.get("match_type")) {
    if (auto t = read_match_type(*v, f.at("match_type"), d)) m.match_type = *t;
  }
  if (const auto* v = f.get("glob_disable_ordering")) {
    if (auto b = read_bool(*v, f.at("glob_disable_ordering"), d)) m.glob_disable_ordering = *b;
  }
  if (const auto* v = f.get("ttl")) {
    if (auto t = read_duration(*v, f.at("ttl"), true, d)) m.ttl = *t;
  }
  m.summary_options = read_summary_options(f.get("summary_options"), "defaults summary_options", d).options;
  m.histogram_options = read_histogram_options(f.get("histogram_options"), "defaults histogram_options", d).options;
  // The deprecated top-level lists apply when the new blocks leave them empty.
  if (const auto* v = f.get("quantiles")) {
    if (auto q = read_quantiles(*v, f.at("quantiles"), d); q && m.summary_options.quantiles.empty()) {
      m.summary_options.quantiles = std::move(*q);
    }
  }
  if (const auto* v = f.get("buckets")) {
    if (auto b = read_buckets(*v, f.at("buckets"), d); b && m.histogram_options.buckets.empty()) {
      m.histogram_options.buckets = std::move(*b);
    }
  }
  if (m.summary_options.quantiles.empty()) {
    m.summary_options.quantiles.assign(std::begin(kDefaultQuantiles), std::end(kDefaultQuantiles));
  }
  if (m.histogram_options.buckets.empty()) {
    m.histogram_options.buckets.assign(std::begin(kDefaultBuckets), std::end(kDefaultBuckets));
  }
  return out;
}

std::optional<MetricMapping> read_mapping(const YamlNode& item, std::size_t index, const DefaultsRead& defaults,
                                          Diags& d) {
  const std::size_t errors_before = d.count();
  const std::string where = "mappings[" + std::to_string(index) + "]";
  Fields f(
      &item, where,
      {"match", "name", "labels", "honor_labels", "observer_type", "timer_type", "buckets", "quantiles", "match_type",
       "help", "action", "match_metric_type", "ttl", "summary_options", "histogram_options", "scale"},
      d);
  if (!f.ok()) return std::nullopt;
  MetricMapping m;
  m.position = item.position;
  m.match_type = defaults.defaults.match_type;
  if (const auto* v = f.get("match_type")) {
    if (auto t = read_match_type(*v, f.at("match_type"), d)) m.match_type = *t;
  }
  if (const auto* v = f.get("action")) {
    if (auto s = read_string(*v, f.at("action"), d)) {
      if (*s == "map") {
        m.action = MappingAction::kMap;
      } else if (*s == "drop") {
        m.action = MappingAction::kDrop;
      } else {
        d.add(*v, f.at("action") + ": found " + describe(*v) + ", expected map or drop");
      }
    }
  }
  if (const auto* v = f.get("match"); v == nullptr) {
    d.add(item, where + ": found no match, expected match: \"a.glob.*\" (or a regex with match_type: regex)");
  } else if (auto s = read_string(*v, f.at("match"), d)) {
    m.match = *s;
    if (m.match_type == MatchType::kGlob && !valid_glob(m.match)) {
      d.add(*v, f.at("match") + ": found invalid glob " + quote(m.match) +
                    ", expected dot-separated components that are '*' or a name like my_metric-1 "
                    "(letters, digits, '_', single '-' inside; the first not starting with a digit)");
    } else if (m.match_type == MatchType::kRegex) {
      if (auto problem = regex_problem(m.match)) {
        d.add(*v, f.at("match") + ": found invalid regex " + quote(m.match) + " (" + *problem +
                      "), expected a regular expression (RE2 syntax)");
      }
    }
  }
  if (const auto* v = f.get("name"); v == nullptr) {
    if (m.action != MappingAction::kDrop) {
      d.add(item, where + ": found no name, expected name: \"metric_name\" (it may use $1 or ${1})");
    }
  } else if (auto s = read_string(*v, f.at("name"), d)) {
    m.name = *s;
    if (!valid_metric_name(m.name)) {
      d.add(*v, f.at("name") + ": found invalid metric name " + quote(m.name) +
                    ", expected letters, digits, '_' and $n/${n} references, not starting with a digit");
    }
  }
  if (const auto* v = f.get("labels")) {
    if (v->is_map()) {
      for (const auto& [key, value] : v->entries) {
        if (!key.is_scalar() || !valid_label_name(key.scalar)) {
          d.add(key,
                f.at("labels") + ": found invalid label name " + describe(key) + ", expected [a-zA-Z_][a-zA-Z0-9_]*");
          continue;
        }
        const bool duplicate = std::any_of(m.labels.begin(), m.labels.end(),
                                           [&label = key.scalar](const auto& l) { return l.first == label; });
        if (duplicate) {
          d.add(key,
                f.at("labels") + ": found label " + quote(key.scalar) + " a second time, expected each label once");
          continue;
        }
        if (value.is_null()) {
          m.labels.emplace_back(key.scalar, "");
        } else if (auto s = read_string(value, f.at("labels") + " " + key.scalar, d)) {
          m.labels.emplace_back(key.scalar, *s);
        }
      }
    } else if (!v->is_null()) {
      d.add(*v, f.at("labels") + ": found " + describe(*v) + ", expected a map of label name to value");
    }
  }
  if (const auto* v = f.get("honor_labels")) {
    if (auto b = read_bool(*v, f.at("honor_labels"), d)) m.honor_labels = *b;
  }
  if (const auto* v = f.get("help")) {
    if (auto s = read_string(*v, f.at("help"), d)) m.help = *s;
  }
  if (const auto* v = f.get("match_metric_type")) {
    if (auto s = read_string(*v, f.at("match_metric_type"), d)) {
      if (*s == "counter") {
        m.match_metric_type = MetricType::kCounter;
      } else if (*s == "gauge") {
        m.match_metric_type = MetricType::kGauge;
      } else if (*s == "observer" || *s == "timer") {
        m.match_metric_type = MetricType::kObserver;
      } else {
        d.add(*v, f.at("match_metric_type") + ": found " + describe(*v) + ", expected counter, gauge or observer");
      }
    }
  }
  if (const auto* v = f.get("scale")) {
    if (auto x = read_double(*v, f.at("scale"), d)) m.scale = *x;
  }
  if (const auto* v = f.get("ttl")) {
    if (auto t = read_duration(*v, f.at("ttl"), true, d)) m.ttl = *t;
  }
  if (m.ttl.count() == 0) m.ttl = defaults.defaults.ttl;

  // Observer type and its options, with statsd_exporter's conflict rules.
  const auto own_observer = read_observer(f, d);
  m.observer_type = own_observer.value_or(defaults.defaults.observer_type);
  const bool observer_explicit = own_observer.has_value() || defaults.observer_explicit;
  const WrittenSummary summary = read_summary_options(f.get("summary_options"), where + " summary_options", d);
  const WrittenHistogram histogram =
      read_histogram_options(f.get("histogram_options"), where + " histogram_options", d);
  std::optional<std::vector<Quantile>> legacy_quantiles;
  std::optional<std::vector<double>> legacy_buckets;
  if (const auto* v = f.get("quantiles")) legacy_quantiles = read_quantiles(*v, f.at("quantiles"), d);
  if (const auto* v = f.get("buckets")) legacy_buckets = read_buckets(*v, f.at("buckets"), d);
  if (f.has("quantiles") && !summary.options.quantiles.empty()) {
    d.add(*f.get("quantiles"), f.at("quantiles") +
                                   ": found quantiles both here and in summary_options, expected them in one place "
                                   "(summary_options.quantiles)");
  }
  if (f.has("buckets") && !histogram.options.buckets.empty()) {
    d.add(*f.get("buckets"), f.at("buckets") +
                                 ": found buckets both here and in histogram_options, expected them in one place "
                                 "(histogram_options.buckets)");
  }
  if (observer_explicit && m.observer_type == ObserverType::kHistogram && summary.present) {
    d.add(*f.get("summary_options"), where +
                                         " summary_options: found summary options on a histogram observer, expected "
                                         "histogram_options or observer_type: summary");
  }
  if (observer_explicit && m.observer_type == ObserverType::kSummary && histogram.present) {
    d.add(*f.get("histogram_options"), where +
                                           " histogram_options: found histogram options on a summary observer, "
                                           "expected summary_options or observer_type: histogram");
  }
  m.summary_options = summary.options;
  if (m.summary_options.quantiles.empty() && legacy_quantiles) m.summary_options.quantiles = *legacy_quantiles;
  fill_summary(m.summary_options, defaults.defaults.summary_options);
  m.histogram_options = histogram.options;
  if (m.histogram_options.buckets.empty() && legacy_buckets) m.histogram_options.buckets = *legacy_buckets;
  fill_histogram(m.histogram_options, defaults.defaults.histogram_options);

  if (d.count() != errors_before) return std::nullopt;
  return m;
}

}  // namespace

ConfigResult<MappingConfig> parse_mapping(std::string_view text, std::string_view filename) {
  std::vector<Diagnostic> diagnostics;
  Diags d(diagnostics);
  MappingConfig config;
  config.path = std::string(filename);
  auto root = parse_yaml(text, filename, diagnostics);
  if (root) {
    const YamlNode* top = root->is_null() ? nullptr : &*root;
    Fields f(top, "mapping file", {"defaults", "mappings"}, d);
    const DefaultsRead defaults = read_defaults(f.get("defaults"), d);
    config.defaults = defaults.defaults;
    if (const auto* list = f.get("mappings")) {
      if (list->is_sequence()) {
        for (std::size_t i = 0; i < list->items.size(); ++i) {
          if (auto m = read_mapping(list->items[i], i, defaults, d)) config.mappings.push_back(std::move(*m));
        }
      } else if (!list->is_null()) {
        d.add(*list, "mappings: found " + describe(*list) + ", expected a list of mappings (- match: ...)");
      }
    }
  }
  if (!diagnostics.empty()) return tl::unexpected(ConfigError{std::move(diagnostics)});
  return config;
}

}  // namespace detail

ConfigResult<MappingConfig> parse_mapping_yaml(std::string_view text, std::string_view filename) {
  return detail::parse_mapping(text, filename);
}

ConfigResult<MappingConfig> load_mapping_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int saved = errno;
    return tl::unexpected(
        ConfigError{{Diagnostic{Position{path, 0, 0}, "cannot read mapping file: " +
                                                          std::error_code(saved, std::system_category()).message()}}});
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto result = parse_mapping_yaml(text.str(), path);
  return result;
}

}  // namespace ringpipe::config
