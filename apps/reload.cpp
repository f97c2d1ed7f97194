#include "reload.hpp"

#include <algorithm>
#include <string_view>

#include "components.hpp"

namespace ringpipe::apps {
namespace {

template <class Section>
const Section* named(const std::vector<Section>& all, std::string_view name) {
  const auto it = std::find_if(all.begin(), all.end(), [&](const Section& s) { return s.name == name; });
  return it == all.end() ? nullptr : &*it;
}

// Both absent, or both present and equal.
template <class Section>
bool same(const Section* a, const Section* b) {
  return a && b ? *a == *b : a == b;
}

bool own_config_changed(const config::PipelineConfig& a, const config::PipelineConfig& b, std::string_view name) {
  const config::SourceConfig* source_a = named(a.sources, name);
  const config::SourceConfig* source_b = named(b.sources, name);
  if (!same(source_a, source_b)) return true;
  // A source's position is the source id written into every batch it sends.
  if (source_a && source_a - a.sources.data() != source_b - b.sources.data()) return true;
  return !same(named(a.processors, name), named(b.processors, name)) ||
         !same(named(a.exporters, name), named(b.exporters, name));
}

// For a ring both pipelines have.
bool same_options(const config::PipelineConfig& a, const config::PipelineConfig& b, const std::string& ring) {
  return ring_options(a, *a.find_ring(ring)) == ring_options(b, *b.find_ring(ring));
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

ReloadPlan plan_reload(const config::PipelineConfig& running, const config::PipelineConfig& next) {
  ReloadPlan plan;
  for (const config::RingConfig& r : next.rings) {
    if (!running.find_ring(r.name)) {
      plan.new_rings.push_back(r.name);
    } else if (running.ring_path(r.name) != next.ring_path(r.name) || !same_options(running, next, r.name)) {
      plan.changed_rings.push_back(r.name);
    }
  }
  const auto uses_changed_ring = [&](const ComponentInfo& c) {
    for (const std::vector<std::string>* rings : {&c.inputs, &c.outputs})
      for (const std::string& r : *rings)
        if (contains(plan.changed_rings, r)) return true;
    return false;
  };
  const std::vector<ComponentInfo> before = pipeline_components(running);
  const std::vector<ComponentInfo> after = pipeline_components(next);
  for (const ComponentInfo& c : after) {
    if (!find_component(before, c.name)) {
      plan.start.push_back(c.name);
    } else if (own_config_changed(running, next, c.name) || uses_changed_ring(c)) {
      plan.restart.push_back(c.name);
    }
  }
  for (const ComponentInfo& c : before)
    if (!find_component(after, c.name)) plan.stop.push_back(c.name);
  return plan;
}

std::vector<std::string> check_reload(const config::PipelineConfig& running, const config::PipelineConfig& next) {
  std::vector<std::string> problems;
  if (next.pipeline != running.pipeline || next.run_dir != running.run_dir)
    problems.push_back("pipeline name or run_dir changed (restart ringpipe run to move the rings)");
  for (const config::RingConfig& r : next.rings) {
    if (running.find_ring(r.name) && !same_options(running, next, r.name))
      problems.push_back("ring " + r.name +
                         ": geometry, overflow policy or reader_timeout changed (a ring keeps its data across "
                         "reloads; stop the pipeline and remove the ring file to change it)");
  }
  return problems;
}

}  // namespace ringpipe::apps
