#include "yaml_tree.hpp"

#include <cstdint>
#include <exception>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

namespace ringpipe::config::detail {

YamlNode::YamlNode() = default;
YamlNode::YamlNode(const YamlNode& other) = default;
YamlNode::YamlNode(YamlNode&& other) noexcept = default;
YamlNode& YamlNode::operator=(const YamlNode& other) = default;
YamlNode& YamlNode::operator=(YamlNode&& other) noexcept = default;
YamlNode::~YamlNode() = default;

namespace {

Position position_of(const YAML::Mark& mark, std::string_view filename) {
  Position p;
  p.file = std::string(filename);
  p.line = mark.line >= 0 ? static_cast<std::uint32_t>(mark.line) + 1 : 0;
  p.column = mark.column >= 0 ? static_cast<std::uint32_t>(mark.column) + 1 : 0;
  return p;
}

// Reads the event stream of the first document and counts the nodes that
// alias expansion would add to the tree, before yaml-cpp builds one (its
// nodes share an anchor's subtree; convert() below copies it per alias, so
// nine levels of nine aliases would become 9^9 nodes). Stops counting at the
// first alias past kMaxYamlAliasNodes, or one inside its own anchor (a cycle
// yaml-cpp builds and convert() could not leave). Memory: one word per anchor
// and per open collection.
class AliasBudget final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& /*mark*/) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& /*mark*/, YAML::anchor_t anchor) override { leaf(anchor); }
  void OnScalar(const YAML::Mark& /*mark*/, const std::string& /*tag*/, YAML::anchor_t anchor,
                const std::string& /*value*/) override {
    leaf(anchor);
  }
  void OnSequenceStart(const YAML::Mark& /*mark*/, const std::string& /*tag*/, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value /*style*/) override {
    open(anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& /*mark*/, const std::string& /*tag*/, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value /*style*/) override {
    open(anchor);
  }
  void OnMapEnd() override { close(); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (refused_) return;
    const std::size_t nodes = anchor < sizes_.size() ? sizes_[anchor] : 1;
    if (nodes == kOpen) {
      refuse(mark, "found an alias inside its own anchor, expected an alias to a complete node");
      return;
    }
    alias_nodes_ += nodes;
    if (alias_nodes_ > kMaxYamlAliasNodes) {
      refuse(mark, "found aliases that expand to more than " + std::to_string(kMaxYamlAliasNodes) +
                       " nodes, expected at most that many (nested anchors and aliases)");
      return;
    }
    add(nodes);
  }

  // The problem found, if any: where and what.
  [[nodiscard]] bool refused() const noexcept { return refused_; }
  [[nodiscard]] const YAML::Mark& mark() const noexcept { return mark_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }

 private:
  static constexpr std::size_t kOpen = std::numeric_limits<std::size_t>::max();

  void leaf(YAML::anchor_t anchor) {
    if (refused_) return;
    record(anchor, 1);
    add(1);
  }
  void open(YAML::anchor_t anchor) {
    if (refused_) return;
    record(anchor, kOpen);
    open_.push_back(Open{anchor, 1});
  }
  void close() {
    if (refused_ || open_.empty()) return;
    const Open done = open_.back();
    open_.pop_back();
    record(done.anchor, done.nodes);
    add(done.nodes);
  }
  // Subtree sizes never exceed the nodes in the text plus kMaxYamlAliasNodes, so no sum overflows.
  void add(std::size_t nodes) {
    if (!open_.empty()) open_.back().nodes += nodes;
  }
  void record(YAML::anchor_t anchor, std::size_t nodes) {
    if (anchor == YAML::NullAnchor) return;
    if (sizes_.size() <= anchor) sizes_.resize(anchor + 1, 1);
    sizes_[anchor] = nodes;
  }
  void refuse(const YAML::Mark& mark, std::string message) {
    refused_ = true;
    mark_ = mark;
    message_ = std::move(message);
  }

  struct Open {
    YAML::anchor_t anchor;
    std::size_t nodes;  // this collection and everything in it so far, aliases expanded
  };
  std::vector<std::size_t> sizes_;  // by anchor id (yaml-cpp numbers them from 1): expanded subtree size
  std::vector<Open> open_;
  std::size_t alias_nodes_ = 0;
  bool refused_ = false;
  YAML::Mark mark_;
  std::string message_;
};

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

std::optional<YamlNode> parse_yaml(std::string_view text, std::string_view filename, std::vector<Diagnostic>& diags) {
  try {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    AliasBudget budget;
    parser.HandleNextDocument(budget);
    if (budget.refused()) {
      Diagnostic d;
      d.position = position_of(budget.mark(), filename);
      if (d.position.line == 0) d.position = Position{std::string(filename), 1, 1};
      d.message = budget.message();
      diags.push_back(std::move(d));
      return std::nullopt;
    }
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
