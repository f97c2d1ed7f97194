#pragma once
// The native histogram schema rules both on-ring formats keep (the sample
// batch, sample/FORMAT.md, and the metric batch, metric/FORMAT.md): one
// header, so that the sample reader and the metric reader refuse the same
// keys. Header-only (the ringpipe::native_schema target); nothing to link.

#include <cstdint>

namespace ringpipe::sample {

// The native histogram schemas Prometheus 2.42 takes.
inline constexpr std::int32_t kNativeSchemaMin = -4;
inline constexpr std::int32_t kNativeSchemaMax = 8;

// The largest |key| a finite double can have under `schema` (doubles span
// 2^-1074 .. 2^1024): 1075 * 2^schema for schema > 0, 1075 otherwise. A key
// beyond it comes from no value; a reader refuses it, which also keeps the
// gaps between keys well inside int32.
[[nodiscard]] constexpr std::int32_t native_key_limit(std::int32_t schema) noexcept {
  return schema > 0 ? 1075 << schema : 1075;
}

}  // namespace ringpipe::sample
