// MetricBatchReader over arbitrary bytes (a hostile or broken processor's
// record in shared memory): every view it hands out stays inside the record,
// a native histogram's part agrees with its counts and keys, and an entry it
// accepts encodes again to one it reads back the same.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "ringpipe/metric/metric_record.hpp"

namespace {

#define RINGPIPE_FUZZ_CHECK(cond)                                 \
  do {                                                            \
    if (!(cond)) {                                                \
      std::fprintf(stderr, "fuzz invariant failed: %s\n", #cond); \
      std::abort();                                               \
    }                                                             \
  } while (false)

using namespace ringpipe::metric;

bool inside(std::span<const std::byte> part, std::span<const std::byte> whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> rec(reinterpret_cast<const std::byte*>(data), size);
  MetricBatchReader reader(rec);
  std::vector<std::byte> again(size + 64);
  while (auto e = reader.next()) {
    RINGPIPE_FUZZ_CHECK(inside(e->value_bytes, rec) && inside(e->label_bytes, rec) && inside(e->native.pairs, rec));
    RINGPIPE_FUZZ_CHECK(e->value_bytes.size() == std::size_t{e->value_count} * sizeof(double));
    std::size_t labels = 0;
    e->for_each_label([&](const Label&) { ++labels; });
    RINGPIPE_FUZZ_CHECK(labels == e->label_count);
    const NativeView& n = e->native;
    RINGPIPE_FUZZ_CHECK(n.pairs.size() == (std::size_t{n.positive_count} + n.negative_count) * 2 * sizeof(double));
    if ((e->flags & kEntryNative) == 0) {
      RINGPIPE_FUZZ_CHECK(n.pairs.empty());
      continue;
    }
    RINGPIPE_FUZZ_CHECK(n.schema >= -4 && n.schema <= 8 && n.zero_threshold >= 0 && n.zero_count >= 0);
    RINGPIPE_FUZZ_CHECK(e->value_count >= 2);
    // A relayed Prometheus native histogram sample: its count and sum only.
    if ((e->flags & kEntryPromSample) != 0) RINGPIPE_FUZZ_CHECK(e->value_count == 2);
    for (std::uint32_t i = 1; i < n.positive_count; ++i)
      RINGPIPE_FUZZ_CHECK(n.positive(i - 1).first < n.positive(i).first);
    for (std::uint32_t i = 1; i < n.negative_count; ++i)
      RINGPIPE_FUZZ_CHECK(n.negative(i - 1).first < n.negative(i).first);
    // Written again (native part, then the classic values), it reads back the same.
    std::vector<double> values = {static_cast<double>(n.schema), n.zero_threshold, n.zero_count,
                                  static_cast<double>(n.positive_count), static_cast<double>(n.negative_count)};
    for (std::uint32_t i = 0; i < n.positive_count + n.negative_count; ++i) {
      values.push_back(n.pair(i).first);
      values.push_back(n.pair(i).second);
    }
    for (std::size_t i = 0; i < e->value_count; ++i) values.push_back(e->value(i));
    SeriesEntry s;
    s.type = e->type;
    s.flags = e->flags & ~kEntryTimestamp;
    s.key = e->key;
    s.name = e->name;
    s.help = e->help;
    if ((e->flags & kEntryPromSample) != 0) {
      s.family_len = static_cast<std::uint16_t>(e->family.size());
      s.unit = e->unit;
    }
    s.label_bytes = e->label_bytes;
    s.label_count = e->label_count;
    s.values = values;
    MetricBatchWriter w(again, BatchOrigin{});
    RINGPIPE_FUZZ_CHECK(w.append(s));
    const std::size_t used = w.finish();
    MetricBatchReader back(std::span<const std::byte>(again.data(), used));
    const auto b = back.next();
    RINGPIPE_FUZZ_CHECK(b && b->value_count == e->value_count && b->native.schema == n.schema &&
                        b->native.positive_count == n.positive_count && b->native.negative_count == n.negative_count);
  }
  return 0;
}
