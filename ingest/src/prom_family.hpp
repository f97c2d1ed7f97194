#pragma once
// Which Prometheus family a sample belongs to, from the family's metadata
// (scrape `# TYPE`, remote_write MetricMetadata): shared by the scrape parser
// and the remote_write decoder so both mark samples the same way. Pure
// functions, any thread; never allocate.
#include <cstdint>
#include <optional>
#include <string_view>

#include "ringpipe/sample/sample_batch.hpp"

namespace ringpipe::ingest::detail {

// The bytes at the end of `name` that are not `family`'s name when the sample
// is one of a `type` family's samples, as it is re-served in the text format:
// a histogram's `_bucket`, `_sum`, `_count`; a summary's `_sum`, `_count`
// (its quantiles carry the family's name). Every other type is served one
// family per sample name (0.0.4 has no info, stateset or gaugehistogram; an
// OpenMetrics counter `x` is served as `x_total`), so the suffix is 0 and the
// sample belongs when its name is the family's or the family's plus the
// suffix OpenMetrics gives it. nullopt: not a sample of this family.
[[nodiscard]] inline std::optional<std::uint8_t> family_suffix(sample::FamilyType type, std::string_view family,
                                                               std::string_view name) noexcept {
  if (name.size() < family.size() || name.substr(0, family.size()) != family) return std::nullopt;
  const std::string_view rest = name.substr(family.size());
  using sample::FamilyType;
  const auto own = [&](std::string_view s) { return rest == s ? std::optional<std::uint8_t>(0) : std::nullopt; };
  switch (type) {
    case FamilyType::kHistogram:
      if (rest == "_bucket" || rest == "_sum" || rest == "_count") return static_cast<std::uint8_t>(rest.size());
      return std::nullopt;
    case FamilyType::kSummary:
      if (rest.empty() || rest == "_sum" || rest == "_count") return static_cast<std::uint8_t>(rest.size());
      return std::nullopt;
    case FamilyType::kGaugeHistogram:
      return rest == "_bucket" || rest == "_gsum" || rest == "_gcount" ? std::optional<std::uint8_t>(0) : std::nullopt;
    case FamilyType::kCounter:
      return rest.empty() || rest == "_total" ? std::optional<std::uint8_t>(0) : std::nullopt;
    case FamilyType::kInfo:
      return rest.empty() || rest == "_info" ? std::optional<std::uint8_t>(0) : std::nullopt;
    default:
      return own("");
  }
}

}  // namespace ringpipe::ingest::detail
