// The top level of a pipeline file (pipeline, run_dir) and the walk over its
// sections, each entry handed to its section's reader.
#include <string>
#include <unordered_set>

#include "pipeline_loader.hpp"

namespace ringpipe::config::detail {

template <class F>
void Loader::for_each_entry(const YamlNode* section, std::string_view what, F&& f) {
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

PipelineConfig Loader::run() {
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

}  // namespace ringpipe::config::detail
