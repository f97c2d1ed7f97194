// libFuzzer target for relabel_configs (also built as a corpus replayer): the
// input up to the first "\n---\n" is a relabel_configs YAML list, read as the
// pipeline file reads it; every further line "name=value,name=value" is a
// label set the compiled rules are applied to. Aborts if a loaded list does
// not compile the same again, or a relabeled set holds an empty value or a
// name twice.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "ringpipe/config/pipeline.hpp"
#include "ringpipe/relabel/relabel.hpp"

#define RINGPIPE_FUZZ_CHECK(cond)                                 \
  do {                                                            \
    if (!(cond)) {                                                \
      std::fprintf(stderr, "fuzz invariant failed: %s\n", #cond); \
      std::abort();                                               \
    }                                                             \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringpipe;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::size_t sep = in.find("\n---\n");
  auto rules = config::parse_relabel_configs(in.substr(0, sep), "fuzz.yaml");
  if (!rules) {
    RINGPIPE_FUZZ_CHECK(!rules.error().diagnostics.empty());
    return 0;
  }
  const auto again = relabel::Rules::compile({rules->specs().begin(), rules->specs().end()});
  RINGPIPE_FUZZ_CHECK(again.has_value() && *again == *rules);
  if (sep == std::string_view::npos) return 0;
  in.remove_prefix(sep + 5);
  relabel::LabelSet ls;
  while (!in.empty()) {
    const std::size_t eol = in.find('\n');
    std::string_view line = in.substr(0, eol);
    in.remove_prefix(eol == std::string_view::npos ? in.size() : eol + 1);
    ls.clear();
    while (!line.empty()) {
      const std::size_t comma = line.find(',');
      const std::string_view pair = line.substr(0, comma);
      line.remove_prefix(comma == std::string_view::npos ? line.size() : comma + 1);
      const std::size_t eq = pair.find('=');
      if (eq != std::string_view::npos) ls.set(pair.substr(0, eq), pair.substr(eq + 1));
    }
    (void)rules->apply(ls);
    ls.sort();
    std::set<std::string> names;
    for (const relabel::Label& l : ls.labels()) {
      RINGPIPE_FUZZ_CHECK(!l.value.empty());
      RINGPIPE_FUZZ_CHECK(names.insert(l.name).second);
    }
  }
  return 0;
}
