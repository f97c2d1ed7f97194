#include "yaml_tree.hpp"

#include <exception>
#include <string>

#include <yaml-cpp/yaml.h>

namespace ringpipe::config::detail {
namespace {

Position position_of(const YAML::Mark& mark, std::string_view filename) {
  Position p;
  p.file = std::string(filename);
  p.line = mark.line >= 0 ? static_cast<std::uint32_t>(mark.line) + 1 : 0;
  p.column = mark.column >= 0 ? static_cast<std::uint32_t>(mark.column) + 1 : 0;
  return p;
}

YamlNode convert(const YAML::Node& node, std::string_view filename, int depth) {
  YamlNode out;
  const YAML::Mark mark = node.Mark();
  out.position = position_of(mark, filename);
  out.offset = mark.pos >= 0 ? static_cast<std::size_t>(mark.pos) : 0;
  if (depth > 64) return out;  // yaml-cpp's own depth guard stops far deeper documents
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out.kind = YamlNode::Kind::kNull;
      break;
    case YAML::NodeType::Scalar:
      out.kind = YamlNode::Kind::kScalar;
      out.scalar = node.Scalar();
      // yaml-cpp tags plain scalars "?" and quoted/block scalars "!".
      out.quoted = node.Tag() == "!";
      break;
    case YAML::NodeType::Sequence:
      out.kind = YamlNode::Kind::kSequence;
      for (const auto& item : node) out.items.push_back(convert(item, filename, depth + 1));
      break;
    case YAML::NodeType::Map:
      out.kind = YamlNode::Kind::kMap;
      for (const auto& kv : node) {
        out.entries.emplace_back(convert(kv.first, filename, depth + 1), convert(kv.second, filename, depth + 1));
      }
      break;
  }
  return out;
}

}  // namespace

std::optional<YamlNode> parse_yaml(std::string_view text, std::string_view filename,
                                   std::vector<Diagnostic>& diags) {
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    YamlNode tree = convert(root, filename, 0);
    if (tree.position.line == 0) tree.position = Position{std::string(filename), 1, 1};
    return tree;
  } catch (const YAML::Exception& e) {
    Diagnostic d;
    d.position = position_of(e.mark, filename);
    if (d.position.line == 0) d.position = Position{std::string(filename), 1, 1};
    d.message = "invalid YAML: " + e.msg;
    diags.push_back(std::move(d));
  } catch (const std::exception& e) {
    diags.push_back(Diagnostic{Position{std::string(filename), 1, 1}, std::string("invalid YAML: ") + e.what()});
  }
  return std::nullopt;
}

}  // namespace ringpipe::config::detail
