#pragma once
// Prometheus' relabeling (`relabel_configs`, model/relabel/relabel.go): rules
// as written (RuleSpec, plain data that config/ fills from a pipeline file),
// compiled once into Rules (RE2 regexes in Go's syntax, anchored as
// Prometheus anchors them: ^(?s:regex)$), and applied in order to a LabelSet
// in which `__name__` is the metric name.
//
// Rules is immutable once compiled and safe to share between threads; apply()
// only reads it. A LabelSet is one thread's scratch: it keeps its strings'
// capacity between samples, so applying rules to a stream of label sets does
// not allocate once the set has grown to the largest one seen. Nothing here
// throws, logs or blocks; a rule that cannot be compiled is a CompileError.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

namespace ringpipe::relabel {

// `action:` as Prometheus spells it (case-insensitive when read).
enum class Action : std::uint8_t {
  kReplace,    // replace: target_label = expand(replacement) when regex matches the joined value
  kKeep,       // keep: drop the label set unless regex matches the joined value
  kDrop,       // drop: drop the label set when regex matches the joined value
  kKeepEqual,  // keepequal: drop unless target_label's value equals the joined value
  kDropEqual,  // dropequal: drop when target_label's value equals the joined value
  kHashMod,    // hashmod: target_label = md5(joined value), last 8 bytes big-endian, mod modulus
  kLabelMap,   // labelmap: copy every label whose name matches to expand(replacement)
  kLabelDrop,  // labeldrop: remove every label whose name matches
  kLabelKeep,  // labelkeep: remove every label whose name does not match
  kLowercase,  // lowercase: target_label = the joined value in lower case
  kUppercase,  // uppercase: target_label = the joined value in upper case
};
[[nodiscard]] std::string_view action_name(Action a) noexcept;
// "replace", "Keep", "LABELMAP": case-insensitive, as Prometheus reads them.
[[nodiscard]] std::optional<Action> parse_action(std::string_view text) noexcept;

inline constexpr std::string_view kDefaultSeparator = ";";
inline constexpr std::string_view kDefaultRegex = "(.*)";
inline constexpr std::string_view kDefaultReplacement = "$1";
// The label that holds the metric name.
inline constexpr std::string_view kMetricNameLabel = "__name__";

// One rule as written, with Prometheus' defaults for what was not.
struct RuleSpec {
  std::vector<std::string> source_labels;        // `source_labels`
  std::string separator{kDefaultSeparator};      // `separator`
  std::string regex{kDefaultRegex};              // `regex`, as written (anchored when compiled)
  std::uint64_t modulus = 0;                     // `modulus`: hashmod only, > 0
  std::string target_label;                      // `target_label`
  std::string replacement{kDefaultReplacement};  // `replacement`: $1, ${1}, ${name}, $$ expand
  Action action = Action::kReplace;              // `action`
  friend bool operator==(const RuleSpec&, const RuleSpec&) = default;
};

// What is wrong with a rule: the key to blame (`target_label`, `regex`, ...)
// and Prometheus' reason, e.g. "relabel configuration for hashmod requires
// non-zero modulus".
struct Problem {
  std::string key;
  std::string message;
};

// Prometheus' Config.Validate() with the legacy name scheme (label names
// [a-zA-Z_][a-zA-Z0-9_]*, which the text exposition format needs), plus the
// regex: it must compile with RE2 within the memory budget. nullopt = valid.
[[nodiscard]] std::optional<Problem> validate(const RuleSpec& rule);

struct CompileError {
  std::size_t index = 0;  // which rule
  Problem problem;
};

// A label of a LabelSet.
struct Label {
  std::string name;
  std::string value;
};

// A label set being relabeled: one per thread, reused for every sample. A
// label with an empty value does not exist (Prometheus' data model): get()
// returns "" for it and set(name, "") removes it.
class LabelSet {
 public:
  void clear() noexcept { size_ = 0; }
  // Sets `name` to `value` ("" removes it).
  void set(std::string_view name, std::string_view value);
  void remove(std::string_view name) noexcept;
  // The value of `name`, "" when absent. Valid until the set changes.
  [[nodiscard]] std::string_view get(std::string_view name) const noexcept;
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  // The labels, in no particular order until sort().
  [[nodiscard]] std::span<const Label> labels() const noexcept { return {items_.data(), size_}; }
  // Orders the labels by name (as Prometheus keeps them).
  void sort() noexcept;

 private:
  friend class Rules;
  [[nodiscard]] std::size_t find(std::string_view name) const noexcept;
  std::vector<Label> items_;  // [0, size_) live; the rest keep their capacity
  std::size_t size_ = 0;
  // Scratch the rules use (kept for its capacity): the joined source values,
  // the expanded target and replacement, labelmap's snapshot.
  std::string joined_;
  std::string target_;
  std::string value_;
  std::vector<Label> snapshot_;
};

// Compiled rules, applied in order. Default-constructed: no rules (empty()).
// Compares by the rules as written, which is what a reload compares.
class Rules {
 public:
  Rules() = default;
  [[nodiscard]] static tl::expected<Rules, CompileError> compile(std::vector<RuleSpec> specs);

  [[nodiscard]] bool empty() const noexcept { return impl_ == nullptr; }
  [[nodiscard]] std::span<const RuleSpec> specs() const noexcept;
  // Applies every rule in order to `labels`; false = a keep/drop rule dropped
  // the set (which is then left part-way relabeled).
  [[nodiscard]] bool apply(LabelSet& labels) const;

  friend bool operator==(const Rules& a, const Rules& b) noexcept;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// [a-zA-Z_][a-zA-Z0-9_]*: a label name Prometheus' legacy scheme accepts.
[[nodiscard]] bool valid_label_name(std::string_view name) noexcept;
// [a-zA-Z_:][a-zA-Z0-9_:]*: a metric name Prometheus' legacy scheme accepts.
[[nodiscard]] bool valid_metric_name(std::string_view name) noexcept;

}  // namespace ringpipe::relabel
