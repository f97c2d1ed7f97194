// processors.<name>: rings and reader, mapping file and its cache, shards,
// flush interval, limits, crash-safe state and the observation defaults.
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <string>

#include "mapping_rules.hpp"
#include "pipeline_loader.hpp"

namespace ringpipe::config::detail {

void Loader::read_processor(const YamlNode& key, const YamlNode& value) {
  ProcessorConfig p;
  p.name = key.scalar;
  p.reader = p.name;
  p.position = key.position;
  const std::string who = "processor " + quote(p.name);
  Fields f(body(value), who,
           {"type",
            "input",
            "output",
            "reader",
            "mapping_config",
            "cache_size",
            "cache_type",
            "shards",
            "flush_interval",
            "ttl",
            "max_series",
            "max_series_per_metric",
            "observer_type",
            "quantiles",
            "buckets",
            "summary_max_age",
            "summary_age_buckets",
            "summary_buf_cap",
            "native_histogram_bucket_factor",
            "native_histogram_max_buckets",
            "state",
            "state_dir",
            "max_metrics",
            "max_name_length",
            "quarantine_after_crashes",
            "sample_rate"},
           d_);
  if (const auto* v = f.get("type"); v == nullptr) {
    d_.add(p.position, who + ": found no type, expected type: aggregate or relay");
  } else if (auto t = detail::read_string(*v, f.at("type"), d_); t && *t == "relay") {
    p.type = ProcessorType::kRelay;
  } else if (t && *t != "aggregate") {
    d_.add(*v, f.at("type") + ": found " + describe(*v) + ", expected aggregate or relay");
  }
  if (p.type == ProcessorType::kRelay) {
    // A relay keeps no series: what shapes, limits or persists them has nothing to act on.
    for (std::string_view k :
         {"shards", "flush_interval", "ttl", "max_series", "max_series_per_metric", "observer_type", "quantiles",
          "buckets", "summary_max_age", "summary_age_buckets", "summary_buf_cap", "native_histogram_bucket_factor",
          "native_histogram_max_buckets", "state", "state_dir", "sample_rate"}) {
      if (const auto* v = f.get(k)) {
        d_.add(*v, f.at(k) + ": found " + describe(*v) +
                       ", not used by type: relay (it forwards each sample and keeps no series)");
      }
    }
    p.state = false;
  }
  read_reader(f, p.reader);
  use_ring(f, "input", who, false, p.position, p.input, p.reader);
  use_ring(f, "output", who, true, p.position, p.output);
  if (!p.input.empty() && p.input == p.output) {
    d_.add(f.get("output")->position,
           f.at("output") + ": found " + quote(p.output) + ", the processor's own input, expected a different ring");
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
  if (const auto* v = f.get("state"); v && p.type != ProcessorType::kRelay) {
    if (auto x = detail::read_bool(*v, f.at("state"), d_)) p.state = *x;
  }
  read_string_into(f, "state_dir", p.state_dir);
  read_size_into(f, "max_name_length", 1, 16u << 20, "1 byte to 16MiB", p.max_name_length);
  read_uint_into(f, "quarantine_after_crashes", 0, 1000, p.quarantine_after_crashes);
  if (const auto* v = f.get("sample_rate")) {
    if (auto s = detail::read_string(*v, f.at("sample_rate"), d_)) {
      if (*s == "replay") {
        p.weighted_sample_rate = false;
      } else if (*s == "weighted") {
        p.weighted_sample_rate = true;
      } else {
        d_.add(*v, f.at("sample_rate") + ": found " + describe(*v) + ", expected replay or weighted");
      }
    }
  }
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
    p.state_dir =
        (std::filesystem::path(std::string(filename_)).parent_path() / p.state_dir).lexically_normal().string();
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
  if (p.summary.quantiles.empty())
    p.summary.quantiles.assign(std::begin(kDefaultQuantiles), std::end(kDefaultQuantiles));
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

void Loader::read_mapping_config(const YamlNode& v, const std::string& what, ProcessorConfig& p) {
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

}  // namespace ringpipe::config::detail
