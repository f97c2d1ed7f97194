#pragma once
// statsd_exporter's syntax rules for mapping files, shared by the mapping
// loader and the pipeline loader (processor defaults). Pure functions.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringpipe/config/mapping.hpp"
#include "schema.hpp"

namespace ringpipe::config::detail {

// A glob match line: components joined by '.', each '*' or an identifier
// (the first may not start with a digit; '-' only between other characters).
bool valid_glob(std::string_view match);
// A metric name, possibly with $n / ${n} references.
bool valid_metric_name(std::string_view name);
// A Prometheus label name.
bool valid_label_name(std::string_view name);
// Why a (Go RE2 syntax) regex does not compile, or nullopt when it does.
std::optional<std::string> regex_problem(std::string_view regex);

// Reads `quantiles: [{quantile, error}, ...]`.
std::optional<std::vector<Quantile>> read_quantiles(const YamlNode& n, std::string_view what, Diags& d);
// Reads `buckets: [..]` (strictly increasing numbers).
std::optional<std::vector<double>> read_buckets(const YamlNode& n, std::string_view what, Diags& d);
std::optional<ObserverType> read_observer_type(const YamlNode& n, std::string_view what, Diags& d);

// The whole mapping-file loader, shared by load_mapping_file and the pipeline loader.
ConfigResult<MappingConfig> parse_mapping(std::string_view text, std::string_view filename);

}  // namespace ringpipe::config::detail
