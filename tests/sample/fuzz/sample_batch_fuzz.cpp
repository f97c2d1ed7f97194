// BatchReader over arbitrary bytes (a hostile or broken ingest's record in
// shared memory): every view it hands out stays inside the record, a native
// histogram sample's part keeps the rules sample/FORMAT.md states, and a
// native sample it accepts is written again by BatchWriter::append_native
// and reads back the same.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <utility>
#include <vector>

#include "ringpipe/sample/sample_batch.hpp"

namespace {

#define RINGPIPE_FUZZ_CHECK(cond)                                 \
  do {                                                            \
    if (!(cond)) {                                                \
      std::fprintf(stderr, "fuzz invariant failed: %s\n", #cond); \
      std::abort();                                               \
    }                                                             \
  } while (false)

using namespace ringpipe::sample;

bool inside(std::span<const std::byte> part, std::span<const std::byte> whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

bool inside(std::string_view part, std::span<const std::byte> whole) {
  return inside(std::span<const std::byte>(reinterpret_cast<const std::byte*>(part.data()), part.size()), whole);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> rec(reinterpret_cast<const std::byte*>(data), size);
  BatchReader reader(rec);
  std::vector<std::byte> again(size + 64);
  while (auto s = reader.next()) {
    RINGPIPE_FUZZ_CHECK(inside(s->name, rec) && inside(s->str_value, rec) && inside(s->family.help, rec) &&
                        inside(s->family.unit, rec) && inside(s->tag_bytes, rec) && inside(s->native().buckets, rec));
    std::vector<Tag> tags;
    s->for_each_tag([&](Tag t) {
      RINGPIPE_FUZZ_CHECK(inside(t.key, s->tag_bytes) && inside(t.value, s->tag_bytes));
      tags.push_back(t);
    });
    RINGPIPE_FUZZ_CHECK(tags.size() == s->tag_count);
    const NativeView n = s->native();
    RINGPIPE_FUZZ_CHECK(n.buckets.size() == (std::size_t{n.positive_count} + n.negative_count) * sizeof(NativeBucket));
    if (s->kind != Kind::kNativeHistogram) {
      RINGPIPE_FUZZ_CHECK(n.buckets.empty() && n.positive_count == 0 && n.negative_count == 0);
      continue;
    }
    RINGPIPE_FUZZ_CHECK(reader.header().format_version == kFormatVersionNative);
    RINGPIPE_FUZZ_CHECK(s->family.type == FamilyType::kHistogram || s->family.type == FamilyType::kGaugeHistogram);
    RINGPIPE_FUZZ_CHECK(n.schema >= kNativeSchemaMin && n.schema <= kNativeSchemaMax);
    RINGPIPE_FUZZ_CHECK(n.zero_threshold >= 0 && n.zero_count >= 0 && n.count >= 0 && std::isfinite(n.count));
    std::vector<std::pair<std::int32_t, double>> pos;
    std::vector<std::pair<std::int32_t, double>> neg;
    for (std::uint32_t i = 0; i < n.positive_count; ++i) pos.push_back(n.positive(i));
    for (std::uint32_t i = 0; i < n.negative_count; ++i) neg.push_back(n.negative(i));
    for (const auto* side : {&pos, &neg}) {
      for (std::size_t i = 0; i < side->size(); ++i) {
        RINGPIPE_FUZZ_CHECK((*side)[i].second >= 0 && std::isfinite((*side)[i].second));
        RINGPIPE_FUZZ_CHECK(i == 0 || (*side)[i - 1].first < (*side)[i].first);
      }
    }
    // Written again, it reads back the same.
    NativeSample ns;
    ns.schema = n.schema;
    ns.reset_hint = n.reset_hint;
    ns.zero_threshold = n.zero_threshold;
    ns.zero_count = n.zero_count;
    ns.count = n.count;
    ns.sum = n.sum;
    ns.positive = pos;
    ns.negative = neg;
    BatchWriter w(again, 0, 0);
    RINGPIPE_FUZZ_CHECK(w.append_native(s->name, tags, ns, s->family, s->timestamp_ns));
    const std::size_t used = w.finish();
    BatchReader back(std::span<const std::byte>(again.data(), used));
    const auto b = back.next();
    RINGPIPE_FUZZ_CHECK(b && b->name == s->name && b->native().schema == n.schema &&
                        b->native().positive_count == n.positive_count &&
                        b->native().negative_count == n.negative_count && b->native().zero_count == n.zero_count &&
                        b->native().count == n.count);
    for (std::uint32_t i = 0; i < n.positive_count + n.negative_count; ++i) {
      RINGPIPE_FUZZ_CHECK(b->native().bucket(i) == n.bucket(i));
    }
  }
  return 0;
}
