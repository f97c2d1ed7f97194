#pragma once
// EntryRelabeler: Prometheus' relabeling of one series entry of a metric
// ring before an exporter serves or sends it (metric_relabel_configs,
// write_relabel_configs): the entry's name as `__name__`, its labels, and for
// a sample of a Prometheus family the family's name, rewritten in place.
// One EntryRelabeler per reader thread (it owns the rewritten strings);
// never throws.

#include <string>
#include <utility>

#include "ringpipe/metric/metric_record.hpp"
#include "ringpipe/relabel/relabel.hpp"

namespace ringpipe::exporters {

class EntryRelabeler {
 public:
  EntryRelabeler() = default;
  explicit EntryRelabeler(relabel::Rules rules) : rules_(std::move(rules)) {}

  [[nodiscard]] bool empty() const noexcept { return rules_.empty(); }
  // Points e's name, family and labels at the relabeled ones (valid until
  // the next call). False: the rules dropped it, or left no valid metric
  // name (or a label too long for the format); e is then unspecified.
  [[nodiscard]] bool apply(metric::MetricEntryView& e) noexcept;

 private:
  relabel::Rules rules_;
  relabel::LabelSet labels_;
  std::string name_;
  std::string family_;
  std::string label_bytes_;
};

}  // namespace ringpipe::exporters
