#pragma once
// A SIGHUP reload in three steps: check_reload (may the new pipeline replace
// the running one while the rings keep their data?), plan_reload (what
// changes), and the supervisor's apply (create the new rings, then stop,
// restart and start children). check and plan are pure functions of the two
// configs: no I/O, safe from any thread.

#include <string>
#include <vector>

#include "ringpipe/config/pipeline.hpp"

namespace ringpipe::apps {

// What replacing the running pipeline with the next one changes. Names are
// in the order of the pipeline that has them (sources, processors, exporters).
struct ReloadPlan {
  std::vector<std::string> start;          // components only the next pipeline has
  std::vector<std::string> stop;           // components only the running pipeline has
  std::vector<std::string> restart;        // in both; its own section, its source id or a ring it uses changed
  std::vector<std::string> new_rings;      // rings only the next pipeline has
  std::vector<std::string> changed_rings;  // rings in both whose file or options (ring_options) differ
  friend bool operator==(const ReloadPlan&, const ReloadPlan&) = default;
};

// A component restarts exactly when its own config compares unequal (its
// mapping rules as loaded and its TLS files' contents included), when it is
// a source whose position, and so the source id it writes, moved, or when a
// ring it reads or writes changed.
[[nodiscard]] ReloadPlan plan_reload(const config::PipelineConfig& running, const config::PipelineConfig& next);

// Why `next` cannot replace `running` under the same supervisor, one line per
// problem: a changed pipeline name or run_dir (the rings would move), a ring
// whose geometry, overflow policy or reader_timeout changed (a ring keeps its
// data across reloads). Empty when it can.
[[nodiscard]] std::vector<std::string> check_reload(const config::PipelineConfig& running,
                                                    const config::PipelineConfig& next);

}  // namespace ringpipe::apps
