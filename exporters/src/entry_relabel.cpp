// metric_relabel_configs / write_relabel_configs on a metric-ring entry.
#include "entry_relabel.hpp"

#include <cstdint>
#include <span>

namespace ringpipe::exporters {

bool EntryRelabeler::apply(metric::MetricEntryView& e) noexcept {
  try {  // the scratch grows (allocates) until it fits the largest series seen
    relabel::LabelSet& ls = labels_;
    ls.clear();
    e.for_each_label([&](metric::Label l) { ls.set(l.name, l.value); });
    ls.set(relabel::kMetricNameLabel, e.name);
    if (!rules_.apply(ls)) return false;
    name_.assign(ls.get(relabel::kMetricNameLabel));
    // A name over 64 KiB (a rule's template can make one) is no name an
    // entry can carry: the series is dropped as one left without a valid name.
    if (!relabel::valid_metric_name(name_) || name_.size() > UINT16_MAX) return false;
    ls.sort();
    label_bytes_.clear();
    std::uint16_t count = 0;
    for (const relabel::Label& l : ls.labels()) {
      if (l.name == relabel::kMetricNameLabel) continue;
      if (l.name.size() > UINT16_MAX || l.value.size() > UINT16_MAX || count == UINT16_MAX) return false;
      const metric::LabelHeader lh{static_cast<std::uint16_t>(l.name.size()),
                                   static_cast<std::uint16_t>(l.value.size())};
      label_bytes_.append(reinterpret_cast<const char*>(&lh), sizeof lh);
      label_bytes_ += l.name;
      label_bytes_ += l.value;
      ++count;
    }
    // A Prometheus sample keeps its family while its new name still ends in
    // the family's suffix (_bucket, _sum, _count); else it is a family of its
    // own, untyped. Any other series is its own family.
    family_ = name_;
    if ((e.flags & metric::kEntryPromSample) != 0) {
      const std::string_view suffix = e.name.substr(e.family.size());
      if (name_.size() > suffix.size() && name_.ends_with(suffix)) {
        family_.resize(name_.size() - suffix.size());
      } else if (!suffix.empty()) {
        e.type = metric::MetricType::kUntyped;
      }
    }
    e.name = name_;
    e.family = family_;
    e.label_bytes = std::as_bytes(std::span(label_bytes_.data(), label_bytes_.size()));
    e.label_count = count;
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace ringpipe::exporters
