// rings.<name>: a ring's geometry (size over lanes, max_record), overflow
// policy, reader slots and reader timeout.
#include <cstdint>
#include <iterator>
#include <string>

#include "pipeline_loader.hpp"

namespace ringpipe::config::detail {

namespace {

std::string human_size(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t u = 0;
  while (u + 1 < std::size(kUnits) && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++u;
  }
  return std::to_string(bytes) + kUnits[u];
}

}  // namespace

void Loader::read_ring(const YamlNode& key, const YamlNode& value) {
  RingConfig r;
  r.name = key.scalar;
  r.position = key.position;
  const std::string where = "ring " + quote(r.name);
  Fields f(body(value), where, {"size", "overflow", "lanes", "max_readers", "max_record", "reader_timeout"}, d_);
  bool geometry_ok = true;  // size, lanes and max_record all readable: check them together
  if (const auto* v = f.get("size")) {
    if (auto x = detail::read_size(*v, f.at("size"), d_)) {
      r.size_bytes = *x;
    } else {
      geometry_ok = false;
    }
  }
  if (const auto* v = f.get("overflow")) {
    if (auto s = detail::read_string(*v, f.at("overflow"), d_)) {
      if (*s == "block") {
        r.overflow = OverflowPolicy::kBlock;
      } else if (*s == "drop") {
        r.overflow = OverflowPolicy::kDrop;
      } else if (*s == "overwrite") {
        r.overflow = OverflowPolicy::kOverwrite;
      } else {
        d_.add(*v, f.at("overflow") + ": found " + describe(*v) + ", expected block, drop or overwrite");
      }
    }
  }
  const std::size_t before_lanes = d_.count();
  read_uint_into(f, "lanes", 1, 256, r.lanes);
  read_uint_into(f, "max_readers", 1, 64, r.max_readers);
  if (const auto* v = f.get("max_record")) {
    if (auto x = detail::read_size(*v, f.at("max_record"), d_)) {
      if (*x > UINT32_MAX) {
        d_.add(*v, f.at("max_record") + ": found " + describe(*v) + ", expected at most 4GiB - 1");
      } else {
        r.max_record_bytes = static_cast<std::uint32_t>(*x);
      }
    }
  }
  geometry_ok = geometry_ok && d_.count() == before_lanes;
  read_millis_into(f, "reader_timeout", r.reader_timeout);
  if (geometry_ok) {
    const std::uint64_t lane = r.lane_capacity_bytes();
    const YamlNode* size_node = f.get("size");
    const Position& at = size_node ? size_node->position : r.position;
    if (r.size_bytes % r.lanes != 0 || lane < 4096 || (lane & (lane - 1)) != 0) {
      std::uint64_t suggested = 4096;
      while (suggested < lane && suggested < (std::uint64_t{1} << 62)) suggested <<= 1;
      d_.add(at, f.at("size") + ": found " + human_size(r.size_bytes) + " over " + std::to_string(r.lanes) +
                     " lanes (" + std::to_string(r.size_bytes / r.lanes) + " bytes each), expected size / lanes " +
                     "to be a power of two of at least 4KiB, e.g. size: " + human_size(suggested * r.lanes));
    } else if (r.max_record_bytes > lane) {
      d_.add(f.get("max_record")->position, f.at("max_record") + ": found " + human_size(r.max_record_bytes) +
                                                ", expected at most the lane capacity " + human_size(lane));
    }
  }
  config_.rings.push_back(std::move(r));
}

}  // namespace ringpipe::config::detail
