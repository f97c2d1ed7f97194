#pragma once
// Reading typed values out of a YamlNode tree, collecting a diagnostic for
// every problem instead of stopping at the first. Messages read
// "<where>: found <what>, expected <what>". Not thread-safe; used by one
// loader at a time.

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringpipe/config/diagnostic.hpp"
#include "ringpipe/config/pipeline.hpp"
#include "ringpipe/config/units.hpp"
#include "yaml_tree.hpp"

namespace ringpipe::config::detail {

// Collects diagnostics for one load.
class Diags {
 public:
  explicit Diags(std::vector<Diagnostic>& out) : out_(out) {}
  void add(const Position& at, std::string message) { out_.push_back(Diagnostic{at, std::move(message)}); }
  void add(const YamlNode& at, std::string message) { add(at.position, std::move(message)); }
  [[nodiscard]] std::size_t count() const noexcept { return out_.size(); }

 private:
  std::vector<Diagnostic>& out_;
};

// "a map", "a sequence", "null", or the scalar in quotes: what a value was found to be.
std::string describe(const YamlNode& node);
std::string quote(std::string_view s);

// The entries of a map, checked against the keys a section knows: reports
// a non-map value, unknown keys (with a suggestion) and duplicate keys.
class Fields {
 public:
  // `where` names the section in messages: `ring "raw"`, `top level`.
  Fields(const YamlNode* map, std::string where, std::initializer_list<std::string_view> known, Diags& diags);

  // The value of `key`, or nullptr when absent (or when the section was not a map).
  [[nodiscard]] const YamlNode* get(std::string_view key) const;
  [[nodiscard]] bool has(std::string_view key) const { return get(key) != nullptr; }
  [[nodiscard]] bool ok() const noexcept { return map_ != nullptr; }
  [[nodiscard]] const std::string& where() const noexcept { return where_; }
  // "<where> <key>": the prefix of a message about one value.
  [[nodiscard]] std::string at(std::string_view key) const { return where_ + " " + std::string(key); }

 private:
  const YamlNode* map_ = nullptr;
  std::string where_;
};

// Typed reads. Each returns nullopt and adds one diagnostic on a bad value;
// `what` is the message prefix (usually Fields::at(key)).
std::optional<std::string> read_string(const YamlNode& n, std::string_view what, Diags& d);
std::optional<bool> read_bool(const YamlNode& n, std::string_view what, Diags& d);
std::optional<std::uint64_t> read_uint(const YamlNode& n, std::string_view what, std::uint64_t min, std::uint64_t max,
                                       Diags& d);
std::optional<double> read_double(const YamlNode& n, std::string_view what, Diags& d);
// Sizes and durations as units.hpp parses them, the message naming `what`.
std::optional<std::uint64_t> read_size(const YamlNode& n, std::string_view what, Diags& d);
// Go-style durations ("1m30s", "500ms", "0"). With `bare_is_nanoseconds`, an
// integer without unit is nanoseconds (Go's YAML decoding of time.Duration).
std::optional<std::chrono::nanoseconds> read_duration(const YamlNode& n, std::string_view what,
                                                      bool bare_is_nanoseconds, Diags& d);
std::optional<std::chrono::milliseconds> read_millis(const YamlNode& n, std::string_view what, Diags& d);

// Pure parsers behind the reads (nullopt on bad input); sizes and durations
// are ringpipe/config/units.hpp's.
std::optional<bool> parse_bool(std::string_view s);
std::optional<std::uint64_t> parse_uint(std::string_view s);
std::optional<double> parse_double(std::string_view s);

// Expands ${VAR} and ${VAR:-default} in every scalar value (not keys) of the
// tree; "$${" is a literal "${". Problems are reported at the exact column of
// the reference in `text`.
void expand_env(YamlNode& root, std::string_view text, const EnvLookup& env, Diags& d);

// 1-based line/column of a byte offset in text.
Position position_at(std::string_view text, std::size_t offset, std::string_view filename);

}  // namespace ringpipe::config::detail
