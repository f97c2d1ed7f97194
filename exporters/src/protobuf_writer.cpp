#include "protobuf_writer.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include <google/protobuf/io/coded_stream.h>

#include "metrics.pb.h"
#include "ringpipe/metric/native_histogram.hpp"

namespace ringpipe::exporters::protobuf {
namespace {

namespace pb = io::prometheus::client;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

pb::MetricType type_of(prometheus::MetricType t) {
  switch (t) {
    case prometheus::MetricType::Counter:
      return pb::COUNTER;
    case prometheus::MetricType::Gauge:
      return pb::GAUGE;
    case prometheus::MetricType::Summary:
      return pb::SUMMARY;
    case prometheus::MetricType::Histogram:
      return pb::HISTOGRAM;
    default:
      return pb::UNTYPED;
  }
}

// The native part: integer counts (deltas) when every count is a whole
// number up to 2^53, else a float histogram (absolute counts and the float
// sample count, which a scraper then takes over the classic integer one), so
// a sample rate's weights are not rounded.
void set_native(pb::Histogram& h, const NativeHistogram& n) {
  h.set_schema(n.schema);
  h.set_zero_threshold(n.zero_threshold);
  const bool whole = metric::native_whole_count(n.count) && metric::native_whole_count(n.zero_count) &&
                     metric::native_whole_counts(n.positive) && metric::native_whole_counts(n.negative);
  if (whole) {
    h.set_zero_count(static_cast<std::uint64_t>(n.zero_count));
  } else {
    h.set_sample_count_float(metric::native_float_count(n.count, n.zero_count, n.positive, n.negative));
    h.set_zero_count_float(n.zero_count);
  }
  std::vector<metric::NativeSpan> spans;
  std::vector<std::int64_t> deltas;
  std::vector<double> counts;
  for (int side = 0; side < 2; ++side) {
    const auto& buckets = side == 0 ? n.positive : n.negative;
    if (whole) {
      metric::native_spans(buckets, spans, deltas);
    } else {
      metric::native_spans(buckets, spans, counts);
    }
    for (const metric::NativeSpan& s : spans) {
      pb::BucketSpan* p = side == 0 ? h.add_positive_span() : h.add_negative_span();
      p->set_offset(s.offset);
      p->set_length(s.length);
    }
    for (const std::int64_t d : deltas) {
      if (side == 0) {
        h.add_positive_delta(d);
      } else {
        h.add_negative_delta(d);
      }
    }
    for (const double c : counts) {
      if (side == 0) {
        h.add_positive_count(c);
      } else {
        h.add_negative_count(c);
      }
    }
  }
  if (n.positive.empty() && n.negative.empty()) {
    // As client_golang: an empty span tells the scraper a native histogram
    // without observations outside the zero bucket is one all the same.
    pb::BucketSpan* p = h.add_positive_span();
    p->set_offset(0);
    p->set_length(0);
  }
}

}  // namespace

bool prefers_protobuf(std::string_view accept) {
  double best_proto = -1;
  double best_text = -1;
  std::size_t proto_at = SIZE_MAX;
  std::size_t text_at = SIZE_MAX;
  std::size_t index = 0;
  while (!accept.empty()) {
    const std::size_t comma = accept.find(',');
    std::string_view range = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
    const std::size_t semi = range.find(';');
    const std::string_view media = trim(range.substr(0, semi));
    std::string_view params = semi == std::string_view::npos ? std::string_view{} : range.substr(semi + 1);
    double q = 1;
    bool proto_family = false;
    bool delimited = false;
    while (!params.empty()) {
      const std::size_t next = params.find(';');
      const std::string_view p = trim(params.substr(0, next));
      params = next == std::string_view::npos ? std::string_view{} : params.substr(next + 1);
      const std::size_t eq = p.find('=');
      if (eq == std::string_view::npos) continue;
      const std::string_view k = trim(p.substr(0, eq));
      const std::string_view v = trim(p.substr(eq + 1));
      if (iequals(k, "q")) {
        double x = 0;
        const auto r = std::from_chars(v.data(), v.data() + v.size(), x);
        q = r.ec == std::errc{} ? x : 0;
      } else if (iequals(k, "proto")) {
        proto_family = v == "io.prometheus.client.MetricFamily";
      } else if (iequals(k, "encoding")) {
        delimited = iequals(v, "delimited");
      }
    }
    if (q > 0) {
      if (iequals(media, "application/vnd.google.protobuf") && proto_family && delimited) {
        if (q > best_proto) {
          best_proto = q;
          proto_at = index;
        }
      } else if (iequals(media, "text/plain") || iequals(media, "application/openmetrics-text") ||
                 iequals(media, "text/*") || iequals(media, "*/*")) {
        if (q > best_text) {
          best_text = q;
          text_at = index;
        }
      }
    }
    ++index;
  }
  if (best_proto < 0) return false;
  return best_proto > best_text || (best_proto == best_text && proto_at < text_at);
}

void append_families(std::string& out, const std::vector<prometheus::MetricFamily>& families,
                     const NativeIndex& natives) {
  pb::MetricFamily f;
  for (const prometheus::MetricFamily& in : families) {
    f.Clear();
    f.set_name(in.name);
    if (!in.help.empty()) f.set_help(in.help);
    f.set_type(type_of(in.type));
    const auto found = natives.find(in.name);
    const std::vector<NativeHistogram>* nat = found == natives.end() ? nullptr : &found->second;
    std::size_t next_native = 0;
    for (std::size_t i = 0; i < in.metric.size(); ++i) {
      const prometheus::ClientMetric& m = in.metric[i];
      pb::Metric* o = f.add_metric();
      for (const auto& l : m.label) {
        pb::LabelPair* p = o->add_label();
        p->set_name(l.name);
        p->set_value(l.value);
      }
      switch (in.type) {
        case prometheus::MetricType::Counter:
          o->mutable_counter()->set_value(m.counter.value);
          break;
        case prometheus::MetricType::Gauge:
          o->mutable_gauge()->set_value(m.gauge.value);
          break;
        case prometheus::MetricType::Summary: {
          pb::Summary* s = o->mutable_summary();
          s->set_sample_count(m.summary.sample_count);
          s->set_sample_sum(m.summary.sample_sum);
          for (const auto& q : m.summary.quantile) {
            pb::Quantile* x = s->add_quantile();
            x->set_quantile(q.quantile);
            x->set_value(q.value);
          }
          break;
        }
        case prometheus::MetricType::Histogram: {
          pb::Histogram* h = o->mutable_histogram();
          h->set_sample_count(m.histogram.sample_count);
          h->set_sample_sum(m.histogram.sample_sum);
          for (const auto& b : m.histogram.bucket) {
            if (std::isinf(b.upper_bound) && b.upper_bound > 0) continue;  // +Inf is sample_count
            pb::Bucket* x = h->add_bucket();
            x->set_cumulative_count(b.cumulative_count);
            x->set_upper_bound(b.upper_bound);
          }
          while (nat != nullptr && next_native < nat->size() && (*nat)[next_native].metric < i) ++next_native;
          if (nat != nullptr && next_native < nat->size() && (*nat)[next_native].metric == i) {
            set_native(*h, (*nat)[next_native]);
          }
          break;
        }
        default:
          o->mutable_untyped()->set_value(m.untyped.value);
          break;
      }
    }
    const std::size_t size = f.ByteSizeLong();
    std::size_t at = out.size();
    out.resize(at + 10 + size);
    auto* p = reinterpret_cast<std::uint8_t*>(out.data() + at);
    p = google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(size, p);
    const std::size_t head = static_cast<std::size_t>(reinterpret_cast<char*>(p) - (out.data() + at));
    f.SerializeToArray(p, static_cast<int>(size));
    out.resize(at + head + size);
  }
}

}  // namespace ringpipe::exporters::protobuf
