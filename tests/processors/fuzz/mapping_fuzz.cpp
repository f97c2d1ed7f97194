// libFuzzer target for regex mapping and label sanitising (also built as a
// corpus replayer). Input: line 1 a regex rule, line 2 a metric name, then
// tag lines "key=value"; the first byte picks the sample kind. Aborts when
// the engine exposes a label Prometheus would refuse: a reserved name, le or
// quantile on the type that owns it, a repeated name, an empty name or a
// value that is not UTF-8.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ringpipe/metric/metric_record.hpp"
#include "ringpipe/processors/aggregator.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace {

using namespace ringpipe;

#define RINGPIPE_FUZZ_CHECK(cond)                                 \
  do {                                                            \
    if (!(cond)) {                                                \
      std::fprintf(stderr, "fuzz invariant failed: %s\n", #cond); \
      std::abort();                                               \
    }                                                             \
  } while (false)

// Decodes code points (unlike the engine's byte-range check) so the two
// cross-check: no overlongs, no surrogates, nothing past U+10FFFF.
bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c >= 0xC0 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF7) {
      n = 3;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3Fu);
    }
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

std::vector<std::string_view> lines(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const std::size_t nl = s.find('\n');
    out.push_back(s.substr(0, nl));
    if (nl == std::string_view::npos) break;
    s.remove_prefix(nl + 1);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static constexpr sample::Kind kKinds[] = {sample::Kind::kCounter, sample::Kind::kGauge, sample::Kind::kTimer,
                                            sample::Kind::kHistogram};
  const sample::Kind kind = kKinds[data[0] % 4];
  const auto parts = lines(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  if (parts.size() < 2) return 0;

  processors::EngineOptions o;
  o.max_name_bytes = 4096;
  processors::MappingRule r;
  r.match = std::string(parts[0]);
  r.match_type = processors::MatchType::kRegex;
  r.name = "mapped_$1";
  r.labels = {{"first", "$1"}, {"named", "${n}"}, {"le", "$2"}, {"quantile", "$0"}, {"__rule", "$1"}};
  r.observer_type = (data[0] & 4) != 0 ? processors::ObserverType::kHistogram : processors::ObserverType::kSummary;
  o.mapping.rules = {r};
  auto engine = processors::AggregatorEngine::create(o);
  if (!engine) return 0;  // a regex RE2 refuses

  std::vector<std::string> keys, values;
  std::vector<sample::Tag> tags;
  for (std::size_t i = 2; i < parts.size() && tags.size() < 32; ++i) {
    const std::size_t eq = parts[i].find('=');
    keys.emplace_back(parts[i].substr(0, eq));
    values.emplace_back(eq == std::string_view::npos ? std::string_view() : parts[i].substr(eq + 1));
  }
  for (std::size_t i = 0; i < keys.size(); ++i) tags.push_back(sample::Tag{keys[i], values[i]});
  std::vector<std::byte> buf(1 << 17);
  sample::BatchWriter w(buf, 1, 0);
  if (!w.append(kind, parts[1], 1, 1.0, tags)) return 0;
  engine->add_batch(std::span<const std::byte>(buf.data(), w.finish()), 1'000'000'000);
  processors::VectorSink sink;
  engine->flush(1'000'000'000, 1'000'000'000, sink);

  for (const auto& rec : sink.records()) {
    metric::MetricBatchReader reader(rec);
    while (auto e = reader.next()) {
      if (e->kind != metric::EntryKind::kSeries) continue;
      const std::string_view owned = e->type == metric::MetricType::kHistogram ? "le"
                                     : e->type == metric::MetricType::kSummary ? "quantile"
                                                                               : "";
      std::string_view prev;
      bool first = true;
      e->for_each_label([&](const metric::Label& l) {
        RINGPIPE_FUZZ_CHECK(!l.name.empty());
        RINGPIPE_FUZZ_CHECK(l.name.substr(0, 2) != "__");
        RINGPIPE_FUZZ_CHECK(l.name != owned);
        RINGPIPE_FUZZ_CHECK(first || l.name != prev);
        RINGPIPE_FUZZ_CHECK(valid_utf8(l.value));
        prev = l.name;
        first = false;
      });
    }
  }
  return 0;
}
