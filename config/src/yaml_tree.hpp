#pragma once
// A YAML document as plain data with positions: the only view of YAML the
// rest of config/ has. yaml_tree.cpp is the one file that sees yaml-cpp; its
// exceptions stop there and become diagnostics. Not thread-safe; plain values.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringpipe/config/diagnostic.hpp"

namespace ringpipe::config::detail {

// At most this many nodes may come from alias expansion in one document (an
// alias counts every node of its anchor's subtree, aliases inside included).
// Nodes written out in the text are bounded by the file's size instead.
inline constexpr std::size_t kMaxYamlAliasNodes = 100'000;

struct YamlNode {
  enum class Kind { kNull, kScalar, kSequence, kMap };
  Kind kind = Kind::kNull;
  std::string scalar;           // kScalar: the value as written (quotes removed)
  bool quoted = false;          // kScalar: written in quotes or as a block scalar (never null/bool/number by form)
  bool poisoned = false;        // kScalar: already reported (e.g. an unset ${VAR}); reads skip it silently
  Position position;            // 1-based
  std::size_t offset = 0;       // byte offset of the node in the source text
  std::vector<YamlNode> items;  // kSequence
  std::vector<std::pair<YamlNode, YamlNode>> entries;  // kMap, in file order (duplicates kept)

  // Defined in yaml_tree.cpp, where YamlNode is complete: clang refuses to
  // define them inside the class, where std::pair<YamlNode, YamlNode> is not.
  YamlNode();
  YamlNode(const YamlNode& other);
  YamlNode(YamlNode&& other) noexcept;
  YamlNode& operator=(const YamlNode& other);
  YamlNode& operator=(YamlNode&& other) noexcept;
  ~YamlNode();

  [[nodiscard]] bool is_null() const noexcept { return kind == Kind::kNull; }
  [[nodiscard]] bool is_scalar() const noexcept { return kind == Kind::kScalar; }
  [[nodiscard]] bool is_sequence() const noexcept { return kind == Kind::kSequence; }
  [[nodiscard]] bool is_map() const noexcept { return kind == Kind::kMap; }
};

// Parses the first document of `text`. On a syntax error appends one
// diagnostic (with yaml-cpp's position) and returns nullopt.
std::optional<YamlNode> parse_yaml(std::string_view text, std::string_view filename, std::vector<Diagnostic>& diags);

}  // namespace ringpipe::config::detail
