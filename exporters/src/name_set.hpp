#pragma once
// NameSet: the family names a render leaves out of the pipeline's part of the
// page (its own and the other components' self-metrics), asked once per
// pipeline family: a million times per scrape at 1M StatsD names. Hashing
// every name cost a sixth of a 1M-series render; the names asked are almost
// never in the set, and the set's names share a few 8-byte starts
// ("ringpipe"), so a name whose start is none of them is answered without a
// hash. Equal to a lookup in the set for every name (tests/exporters).

#include <array>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace ringpipe::exporters::detail {

class NameSet {
 public:
  explicit NameSet(std::vector<std::string> names) : names_(std::move(names)), set_(names_.begin(), names_.end()) {
    for (const std::string& n : names_) {
      const std::uint64_t k = start_of(n);
      bool known = false;
      for (std::size_t i = 0; i < starts_used_; ++i) known |= starts_[i] == k;
      if (known) continue;
      if (starts_used_ == starts_.size()) {
        every_name_hashed_ = true;  // too many starts to scan: the set answers alone
        break;
      }
      starts_[starts_used_++] = k;
    }
  }
  NameSet(const NameSet&) = delete;
  NameSet& operator=(const NameSet&) = delete;

  // The names the families `bases` own on a page: each one's own and, as a
  // summary's or histogram's, its _sum, _count and _bucket series.
  template <class Names>
  static NameSet owned_by(const Names& bases) {
    std::vector<std::string> names;
    names.reserve(std::size(bases) * 4);
    for (const auto& base : bases) {
      for (const char* suffix : {"", "_sum", "_count", "_bucket"}) names.push_back(std::string(base) + suffix);
    }
    return NameSet(std::move(names));
  }

  [[nodiscard]] bool contains(std::string_view name) const {
    if (!every_name_hashed_) {
      const std::uint64_t k = start_of(name);
      bool maybe = false;
      for (std::size_t i = 0; i < starts_used_; ++i) maybe |= starts_[i] == k;
      if (!maybe) return false;
    }
    return set_.count(name) != 0;
  }

 private:
  // A name's first 8 bytes, zero-padded when it is shorter: equal names have
  // equal starts, so a start outside the set's rules the name out.
  static std::uint64_t start_of(std::string_view name) noexcept {
    std::uint64_t k = 0;
    if (!name.empty()) std::memcpy(&k, name.data(), name.size() < sizeof k ? name.size() : sizeof k);
    return k;
  }

  std::vector<std::string> names_;  // the views in set_ point here
  std::unordered_set<std::string_view> set_;
  std::array<std::uint64_t, 8> starts_{};
  std::size_t starts_used_ = 0;
  bool every_name_hashed_ = false;
};

}  // namespace ringpipe::exporters::detail
