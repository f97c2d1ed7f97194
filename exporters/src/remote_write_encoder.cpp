#include "remote_write_encoder.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <string_view>
#include <vector>

#include <snappy.h>

#include "remote.pb.h"
#include "ringpipe/metric/native_histogram.hpp"

namespace ringpipe::exporters {

using metric::MetricType;

std::string format_double(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

RequestBuilder::RequestBuilder(std::chrono::milliseconds metadata_interval)
    : req_(std::make_unique<prometheus::WriteRequest>()), metadata_interval_(metadata_interval) {}
RequestBuilder::~RequestBuilder() = default;
RequestBuilder::RequestBuilder(RequestBuilder&&) noexcept = default;
RequestBuilder& RequestBuilder::operator=(RequestBuilder&&) noexcept = default;

namespace {

using LabelRef = RequestBuilder::LabelRef;

// A new TimeSeries named `name` with `labels` (and extra_name="extra_value"
// when given), its labels sorted by name as remote_write requires.
prometheus::TimeSeries* new_series(prometheus::WriteRequest& req, std::vector<LabelRef>& labels, std::string_view name,
                                   std::string_view extra_name = {}, std::string_view extra_value = {}) {
  const std::size_t base = labels.size();
  labels.push_back({"__name__", name});
  if (!extra_name.empty()) labels.push_back({extra_name, extra_value});
  std::vector<LabelRef> sorted(labels);
  std::sort(sorted.begin(), sorted.end(), [](const LabelRef& a, const LabelRef& b) { return a.name < b.name; });
  labels.resize(base);
  prometheus::TimeSeries* s = req.add_timeseries();
  for (const LabelRef& l : sorted) {
    prometheus::Label* pl = s->add_labels();
    pl->set_name(std::string(l.name));
    pl->set_value(std::string(l.value));
  }
  return s;
}

void add_series(prometheus::WriteRequest& req, std::vector<LabelRef>& labels, std::string_view name,
                std::string_view extra_name, std::string_view extra_value, double value, std::int64_t ts) {
  prometheus::Sample* sample = new_series(req, labels, name, extra_name, extra_value)->add_samples();
  sample->set_value(value);
  sample->set_timestamp(ts);
}

// The native part of a histogram entry as one remote_write Histogram sample,
// in a TimeSeries of its own named `name`: integer counts (deltas) when every
// count is a whole number up to 2^53, as Prometheus' own histograms; else a
// float histogram (absolute counts), so a sample rate's weights are not rounded.
// `ts` is the series to add it to. A gaugehistogram family's sample goes out
// with reset hint GAUGE.
void add_native(prometheus::TimeSeries& ts_out, const metric::MetricEntryView& e, std::int64_t ts) {
  prometheus::Histogram* h = ts_out.add_histograms();
  if (e.type == MetricType::kGaugeHistogram) h->set_reset_hint(prometheus::Histogram::GAUGE);
  const metric::NativeView& n = e.native;
  std::array<std::vector<std::pair<std::int32_t, double>>, 2> sides;  // positive, negative
  for (std::uint32_t i = 0; i < n.positive_count; ++i) sides[0].push_back(n.positive(i));
  for (std::uint32_t i = 0; i < n.negative_count; ++i) sides[1].push_back(n.negative(i));
  const bool whole = metric::native_whole_count(e.value(0)) && metric::native_whole_count(n.zero_count) &&
                     metric::native_whole_counts(sides[0]) && metric::native_whole_counts(sides[1]);
  if (whole) {
    h->set_count_int(static_cast<std::uint64_t>(e.value(0)));
    h->set_zero_count_int(static_cast<std::uint64_t>(n.zero_count));
  } else {
    h->set_count_float(metric::native_float_count(e.value(0), n.zero_count, sides[0], sides[1]));
    h->set_zero_count_float(n.zero_count);
  }
  h->set_sum(e.value(1));
  h->set_schema(n.schema);
  h->set_zero_threshold(n.zero_threshold);
  h->set_timestamp(ts);
  std::vector<metric::NativeSpan> spans;
  std::vector<std::int64_t> deltas;
  std::vector<double> counts;
  for (int side = 0; side < 2; ++side) {
    if (whole) {
      metric::native_spans(sides[side], spans, deltas);
    } else {
      metric::native_spans(sides[side], spans, counts);
    }
    for (const metric::NativeSpan& sp : spans) {
      prometheus::BucketSpan* b = side == 0 ? h->add_positive_spans() : h->add_negative_spans();
      b->set_offset(sp.offset);
      b->set_length(sp.length);
    }
    for (const std::int64_t d : deltas) {
      if (side == 0) {
        h->add_positive_deltas(d);
      } else {
        h->add_negative_deltas(d);
      }
    }
    for (const double c : counts) {
      if (side == 0) {
        h->add_positive_counts(c);
      } else {
        h->add_negative_counts(c);
      }
    }
  }
}

prometheus::MetricMetadata::MetricType metadata_type(MetricType t) noexcept {
  using M = prometheus::MetricMetadata;
  switch (t) {
    case MetricType::kCounter:
      return M::COUNTER;
    case MetricType::kGauge:
      return M::GAUGE;
    case MetricType::kSummary:
      return M::SUMMARY;
    case MetricType::kHistogram:
      return M::HISTOGRAM;
    case MetricType::kInfo:
      return M::INFO;
    case MetricType::kStateset:
      return M::STATESET;
    case MetricType::kGaugeHistogram:
      return M::GAUGEHISTOGRAM;
    case MetricType::kUntyped:
      break;
  }
  return M::UNKNOWN;
}

// Families whose metadata a builder remembers sending; past it, it forgets
// them all and sends each family's again with its next sample.
constexpr std::size_t kMaxMetadataFamilies = 100'000;

}  // namespace

// The entry's family's TYPE, HELP and UNIT, when this request does not carry
// them yet and the last request that did is metadata_interval_ old. An
// untyped family without HELP or UNIT says nothing and is left out.
void RequestBuilder::add_metadata(const metric::MetricEntryView& e) {
  const auto type = metadata_type(e.type);
  if (type == prometheus::MetricMetadata::UNKNOWN && e.help.empty() && e.unit.empty()) return;
  const std::string_view family = e.family.empty() ? e.name : e.family;
  const auto now = std::chrono::steady_clock::now();
  auto it = metadata_sent_.find(std::string(family));
  if (it != metadata_sent_.end()) {
    if (it->second.request == request_ || now - it->second.at < metadata_interval_) return;
  } else {
    if (metadata_sent_.size() >= kMaxMetadataFamilies) metadata_sent_.clear();
    it = metadata_sent_.emplace(std::string(family), MetadataSent{}).first;
  }
  it->second = MetadataSent{request_, now};
  prometheus::MetricMetadata* m = req_->add_metadata();
  m->set_type(type);
  m->set_metric_family_name(std::string(family));
  m->set_help(std::string(e.help));
  m->set_unit(std::string(e.unit));
}

std::size_t RequestBuilder::add(const metric::MetricEntryView& e, std::int64_t ts) {
  const std::size_t n = add_samples(e, ts);
  if (n != 0) add_metadata(e);
  return n;
}

std::size_t RequestBuilder::add_samples(const metric::MetricEntryView& e, std::int64_t ts) {
  std::vector<LabelRef> labels;
  labels.reserve(e.label_count + 2);
  e.for_each_label([&](const metric::Label& l) {
    if (!l.value.empty()) labels.push_back({l.name, l.value});
  });
  if ((e.flags & metric::kEntryTimestamp) != 0) return add_stamped(e, labels);
  std::size_t n = 0;
  const std::string name(e.name);
  if ((e.flags & metric::kEntryPromSample) != 0) {
    // One sample of a Prometheus family, named and labelled as it came
    // (`foo_bucket{le=...}`): sent as is, whatever its family's type; a
    // native histogram sample as one Histogram sample.
    if ((e.flags & metric::kEntryNative) != 0) {
      if (e.value_count != 2) return 0;
      add_native(*new_series(*req_, labels, name), e, ts);
      ++samples_;
      return 1;
    }
    if (e.value_count != 1) return 0;
    add_series(*req_, labels, name, {}, {}, e.value(0), ts);
    ++samples_;
    return 1;
  }
  switch (e.type) {
    case MetricType::kCounter:
    case MetricType::kGauge:
      if (e.value_count < 1) return 0;
      add_series(*req_, labels, name, {}, {}, e.value(0), ts);
      n = 1;
      break;
    case MetricType::kSummary:
    case MetricType::kHistogram: {
      if (e.value_count < 2) return 0;
      const bool hist = e.type == MetricType::kHistogram;
      const std::string bucket_name = hist ? name + "_bucket" : name;
      for (std::size_t i = 2; i + 1 < e.value_count; i += 2) {
        add_series(*req_, labels, bucket_name, hist ? "le" : "quantile", format_double(e.value(i)), e.value(i + 1), ts);
        ++n;
      }
      add_series(*req_, labels, name + "_sum", {}, {}, e.value(1), ts);
      add_series(*req_, labels, name + "_count", {}, {}, e.value(0), ts);
      n += 2;
      if (hist && (e.flags & metric::kEntryNative) != 0) {
        add_native(*new_series(*req_, labels, name), e, ts);  // beside the classic series, under the family's own name
        ++n;
      }
      break;
    }
    default:  // the types above 4 come only with kEntryPromSample
      return 0;
  }
  samples_ += n;
  return n;
}

// A relayed sample at its own time: every sample of one series in this
// request joins that series' one TimeSeries (remote_write 1.0 groups by
// series), ordered by time when the request is taken.
// A native histogram sample (kEntryNative) goes out as one Histogram sample
// of its series, its spans and counts as it came (add_native).
std::size_t RequestBuilder::add_stamped(const metric::MetricEntryView& e, std::vector<LabelRef>& labels) {
  const bool native = (e.flags & metric::kEntryNative) != 0;
  if (e.kind != metric::EntryKind::kSeries || e.value_count != (native ? 2 : 1)) return 0;
  const std::int64_t ns = e.timestamp_ns;
  const std::int64_t ms = ns / 1'000'000 - (ns % 1'000'000 < 0 ? 1 : 0);  // floor: before the epoch too
  const auto [it, added] = stamped_.try_emplace(e.key, req_->timeseries_size());
  if (native) {
    prometheus::TimeSeries* s = added ? new_series(*req_, labels, e.name) : req_->mutable_timeseries(it->second);
    add_native(*s, e, ms);
    const int n = s->histograms_size();
    if (n >= 2 && ms < s->histograms(n - 2).timestamp()) unordered_ = true;
    ++samples_;
    return 1;
  }
  if (added) {
    add_series(*req_, labels, e.name, {}, {}, e.value(0), ms);
  } else {
    prometheus::TimeSeries* s = req_->mutable_timeseries(it->second);
    prometheus::Sample* sample = s->add_samples();
    sample->set_value(e.value(0));
    sample->set_timestamp(ms);
    if (ms < s->samples(s->samples_size() - 2).timestamp()) unordered_ = true;
  }
  ++samples_;
  return 1;
}

Result<std::string> RequestBuilder::take_compressed() {
  if (unordered_) {
    for (const auto& [key, index] : stamped_) {
      auto* samples = req_->mutable_timeseries(index)->mutable_samples();
      std::stable_sort(samples->begin(), samples->end(), [](const prometheus::Sample& a, const prometheus::Sample& b) {
        return a.timestamp() < b.timestamp();
      });
      auto* hists = req_->mutable_timeseries(index)->mutable_histograms();
      std::stable_sort(
          hists->begin(), hists->end(),
          [](const prometheus::Histogram& a, const prometheus::Histogram& b) { return a.timestamp() < b.timestamp(); });
    }
  }
  stamped_.clear();
  unordered_ = false;
  std::string raw;
  if (!req_->SerializeToString(&raw)) return make_error(std::errc::invalid_argument, "remote_write: serialize");
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  req_->Clear();
  samples_ = 0;
  ++request_;
  return out;
}

}  // namespace ringpipe::exporters
