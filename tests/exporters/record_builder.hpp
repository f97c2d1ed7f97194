#pragma once
// Test helper: builds metric-batch records (metric/FORMAT.md) the way a
// processor shard writes them, and the block-policy rings they go into.
// Not thread-safe.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "ringpipe/metric/metric_record.hpp"
#include "ringpipe/ring/ring.hpp"

namespace ringpipe::exporters::testing {

using metric::EntryKind;
using metric::MetricType;
using LabelList = std::vector<std::pair<std::string, std::string>>;

inline std::vector<std::byte> encode_labels(const LabelList& labels) {
  std::vector<std::byte> out;
  for (const auto& [n, v] : labels) {
    metric::LabelHeader h{static_cast<std::uint16_t>(n.size()), static_cast<std::uint16_t>(v.size())};
    const std::size_t at = out.size();
    out.resize(at + sizeof h + n.size() + v.size());
    std::memcpy(out.data() + at, &h, sizeof h);
    std::memcpy(out.data() + at + sizeof h, n.data(), n.size());
    std::memcpy(out.data() + at + sizeof h + n.size(), v.data(), v.size());
  }
  return out;
}

// A new metric ring at `path` (block overflow), as a processor's output ring.
inline ring::Ring make_block_ring(const std::string& path, std::uint32_t lanes, std::uint64_t lane_capacity_bytes) {
  ring::RingOptions o;
  o.lane_capacity_bytes = lane_capacity_bytes;
  o.lanes = lanes;
  o.overflow = ring::Overflow::kBlock;
  auto r = ring::Ring::create(path, o);
  EXPECT_TRUE(r) << r.error().message();
  return std::move(*r);
}

// A stable series id for tests (the processor uses its own hash).
inline std::uint64_t series_key(const std::string& name, const LabelList& labels) {
  std::string s = name;
  for (const auto& [n, v] : labels) s += "\x1f" + n + "=" + v;
  return std::hash<std::string>{}(s) | 1;
}

class RecordBuilder {
 public:
  explicit RecordBuilder(metric::BatchOrigin origin, std::size_t capacity = 1 << 20)
      : buf_(capacity), writer_(buf_, origin) {}

  // `flags` kEntryNative: `values` start with the native part (metric_record.hpp).
  RecordBuilder& series(MetricType type, const std::string& name, const LabelList& labels, std::vector<double> values,
                        const std::string& help = "", std::uint16_t flags = 0) {
    return series_keyed(series_key(name, labels), type, name, labels, std::move(values), help, flags);
  }
  // A series under a key of the caller's (a hostile writer's: any key, any labels).
  RecordBuilder& series_keyed(std::uint64_t key, MetricType type, const std::string& name, const LabelList& labels,
                              std::vector<double> values, const std::string& help = "", std::uint16_t flags = 0) {
    auto lb = encode_labels(labels);
    metric::SeriesEntry e;
    e.kind = EntryKind::kSeries;
    e.type = type;
    e.flags = flags;
    e.key = key;
    e.name = name;
    e.help = help;
    e.label_bytes = lb;
    e.label_count = static_cast<std::uint16_t>(labels.size());
    e.values = values;
    ok_ = writer_.append(e) && ok_;
    return *this;
  }
  // One sample of a Prometheus family (kEntryPromSample): `name` is the
  // sample's name, its first `family_len` bytes the family's.
  RecordBuilder& prom_sample(MetricType type, const std::string& name, std::size_t family_len, const LabelList& labels,
                             double value, const std::string& help = "", const std::string& unit = "") {
    auto lb = encode_labels(labels);
    const std::vector<double> values{value};
    metric::SeriesEntry e;
    e.kind = EntryKind::kSeries;
    e.type = type;
    e.flags = metric::kEntryPromSample;
    e.key = series_key(name, labels);
    e.name = name;
    e.family_len = static_cast<std::uint16_t>(family_len);
    e.help = help;
    e.unit = unit;
    e.label_bytes = lb;
    e.label_count = static_cast<std::uint16_t>(labels.size());
    e.values = values;
    ok_ = writer_.append(e) && ok_;
    return *this;
  }
  // One sample at its own time (kEntryTimestamp), as a relay processor
  // writes it; `family_len` > 0 makes it a Prometheus sample.
  RecordBuilder& stamped(MetricType type, const std::string& name, const LabelList& labels, double value,
                         std::int64_t timestamp_ns, std::size_t family_len = 0, const std::string& help = "",
                         const std::string& unit = "") {
    auto lb = encode_labels(labels);
    const std::vector<double> values{value};
    metric::SeriesEntry e;
    e.kind = EntryKind::kSeries;
    e.type = type;
    e.flags = family_len != 0 ? metric::kEntryPromSample : 0;
    e.key = series_key(name, labels);
    e.name = name;
    e.family_len = static_cast<std::uint16_t>(family_len);
    e.help = help;
    e.unit = unit;
    e.label_bytes = lb;
    e.label_count = static_cast<std::uint16_t>(labels.size());
    e.values = values;
    e.timestamp_ns = timestamp_ns;
    ok_ = writer_.append_stamped(e) && ok_;
    return *this;
  }
  // One Prometheus native histogram sample at its own time, as a relay
  // writes it (kEntryPromSample | kEntryNative | kEntryTimestamp): `values`
  // the native part, then count and sum; its family's name is `name`.
  RecordBuilder& stamped_native(MetricType type, const std::string& name, const LabelList& labels,
                                std::vector<double> values, std::int64_t timestamp_ns, const std::string& help = "") {
    auto lb = encode_labels(labels);
    metric::SeriesEntry e;
    e.kind = EntryKind::kSeries;
    e.type = type;
    e.flags = metric::kEntryPromSample | metric::kEntryNative;
    e.key = series_key(name, labels);
    e.name = name;
    e.family_len = static_cast<std::uint16_t>(name.size());
    e.help = help;
    e.label_bytes = lb;
    e.label_count = static_cast<std::uint16_t>(labels.size());
    e.values = values;
    e.timestamp_ns = timestamp_ns;
    ok_ = writer_.append_stamped(e) && ok_;
    return *this;
  }
  RecordBuilder& expire(MetricType type, const std::string& name, const LabelList& labels) {
    auto lb = encode_labels(labels);
    metric::SeriesEntry e;
    e.kind = EntryKind::kExpire;
    e.type = type;
    e.key = series_key(name, labels);
    e.name = name;
    e.label_bytes = lb;
    e.label_count = static_cast<std::uint16_t>(labels.size());
    ok_ = writer_.append(e) && ok_;
    return *this;
  }
  RecordBuilder& begin(std::uint64_t id) {
    ok_ = writer_.append_marker(EntryKind::kSnapshotBegin, id) && ok_;
    return *this;
  }
  RecordBuilder& end(std::uint64_t id) {
    ok_ = writer_.append_marker(EntryKind::kSnapshotEnd, id) && ok_;
    return *this;
  }
  [[nodiscard]] bool ok() const noexcept { return ok_; }
  std::vector<std::byte> take() {
    const std::size_t n = writer_.finish();
    return std::vector<std::byte>(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(n));
  }

 private:
  std::vector<std::byte> buf_;
  metric::MetricBatchWriter writer_;
  bool ok_ = true;
};

inline metric::BatchOrigin origin(std::uint64_t instance, std::uint16_t shard = 0, std::uint16_t shards = 1,
                                  std::uint64_t flush_seq = 1, std::int64_t flush_ns = 0) {
  metric::BatchOrigin o;
  o.instance_id = instance;
  o.shard = shard;
  o.shard_count = shards;
  o.flush_seq = flush_seq;
  o.flush_ns = flush_ns;
  return o;
}

}  // namespace ringpipe::exporters::testing
