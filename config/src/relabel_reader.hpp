#pragma once
// Reads a `relabel_configs:` list (Prometheus' <relabel_config> entries) out
// of a YamlNode into compiled relabel::Rules, reporting each problem at the
// key it concerns. Used by sources, exporters and parse_relabel_configs();
// one caller at a time, on one thread.

#include <string>

#include "ringpipe/relabel/relabel.hpp"
#include "schema.hpp"
#include "yaml_tree.hpp"

namespace ringpipe::config::detail {

// `what` names the list in messages: `source "statsd" relabel_configs`.
// Returns false (and leaves `out` empty) when anything was wrong.
bool read_relabel_configs(const YamlNode& list, const std::string& what, relabel::Rules& out, Diags& d);

}  // namespace ringpipe::config::detail
