#include "family_registry.hpp"

#include <array>

#include "hash.hpp"

namespace ringpipe::processors::detail {
namespace {

constexpr std::array<std::string_view, 3> kSuffixes{"_sum", "_count", "_bucket"};

bool has_series_suffixes(FamilyKind k) noexcept { return k == FamilyKind::kSummary || k == FamilyKind::kHistogram; }

}  // namespace

FamilyRegistry::FamilyRegistry(std::size_t max_families, std::size_t max_series, std::size_t max_series_per_metric)
    : max_families_(max_families),
      max_series_(max_series),
      max_per_metric_(max_series_per_metric),
      chunks_(std::make_unique<std::unique_ptr<Family[]>[]>(max_families / kChunk + 1)) {}

Family* FamilyRegistry::find_locked(std::string_view name) const {
  const std::uint32_t id = by_name_.find(hash_str(name), [&](std::uint32_t v) { return at(v).name == name; });
  return id == FlatIndex::kNone ? nullptr : &at(id);
}

std::size_t FamilyRegistry::TextsHash::operator()(const FamilyTexts& t) const noexcept {
  return std::hash<std::string_view>{}(t.help) * 31 + std::hash<std::string_view>{}(t.unit);
}

const FamilyTexts* FamilyRegistry::intern_locked(std::string_view help, std::string_view unit) {
  return &*texts_.insert(FamilyTexts{std::string(help), std::string(unit)}).first;
}

FamilyRegistry::Lookup FamilyRegistry::get_or_create(std::string_view name, FamilyKind kind, std::string_view help,
                                                     const PromFamily& prom) {
  std::lock_guard lock(mu_);
  if (Family* f = find_locked(name)) {
    const bool other = f->kind != kind || f->prom_type != prom.type || f->prom_suffix_len != prom.suffix_len;
    return Lookup{f, f->blocked || other};
  }
  const std::uint32_t id = count_.load(std::memory_order_relaxed);
  if (id >= max_families_) return Lookup{};
  // A summary or histogram "foo" owns foo_sum, foo_count and foo_bucket: a
  // family of any other name that would print the same series is refused.
  bool blocked = false;
  if (has_series_suffixes(kind)) {
    for (std::string_view s : kSuffixes) {
      std::string n(name);
      n += s;
      if (Family* other = find_locked(n); other && !other->blocked) blocked = true;
    }
  }
  for (std::string_view s : kSuffixes) {
    if (name.size() > s.size() && name.substr(name.size() - s.size()) == s) {
      Family* stem = find_locked(name.substr(0, name.size() - s.size()));
      if (stem && !stem->blocked && has_series_suffixes(stem->kind)) blocked = true;
    }
  }
  if (!chunks_[id / kChunk]) chunks_[id / kChunk] = std::make_unique<Family[]>(kChunk);
  Family& f = at(id);
  f.id = id;
  f.kind = kind;
  f.blocked = blocked;
  f.name = names_.add(name);
  f.name_hash = hash_str(name);
  f.texts = intern_locked(help, prom.unit);
  f.prom_type = prom.type;
  f.prom_suffix_len = prom.suffix_len;
  by_name_.insert(f.name_hash, id);
  count_.store(id + 1, std::memory_order_release);
  return Lookup{&f, blocked};
}

bool FamilyRegistry::try_add_series(Family& f) noexcept {
  if (f.series.fetch_add(1, std::memory_order_relaxed) >= max_per_metric_) {
    f.series.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  if (total_series_.fetch_add(1, std::memory_order_relaxed) >= max_series_) {
    total_series_.fetch_sub(1, std::memory_order_relaxed);
    f.series.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void FamilyRegistry::remove_series(Family& f) noexcept {
  f.series.fetch_sub(1, std::memory_order_relaxed);
  total_series_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace ringpipe::processors::detail
