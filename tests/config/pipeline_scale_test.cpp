// `ringpipe validate` on a pipeline with many rings: every check is a hash
// lookup, so 100,000 rings validate within the ctest TIMEOUT of this binary
// (60 s; about 16 s in a debug build, most of it yaml-cpp), where checks that
// scanned every ring for every ring or use took minutes. No timing is
// asserted here: the TIMEOUT is the bound.
#include <string>

#include <gtest/gtest.h>

#include "ringpipe/config/pipeline.hpp"
#include "test_support.hpp"

namespace ringpipe::config {
namespace {

std::optional<std::string> no_env(std::string_view) { return std::nullopt; }

// A source writes r0, processor pi reads ri and writes ri+1, an exporter reads the last ring.
std::string chain_of_rings(int rings) {
  std::string y = "rings:\n";
  for (int i = 0; i < rings; ++i) y += "  r" + std::to_string(i) + ": {size: 1MiB}\n";
  y += "sources:\n  in: {type: statsd, listen: [udp://127.0.0.1:9125], output: r0}\nprocessors:\n";
  for (int i = 0; i + 1 < rings; ++i) {
    y += "  p" + std::to_string(i) + ": {type: aggregate, state: false, input: r" + std::to_string(i) + ", output: r" +
         std::to_string(i + 1) + "}\n";
  }
  y += "exporters:\n  out: {type: prometheus, input: r" + std::to_string(rings - 1) + ", listen: 127.0.0.1:9102}\n";
  return y;
}

TEST(PipelineScale, ValidatesAHundredThousandRingsWithinTheTestTimeout) {
  // Sanitizer builds run several times slower: a fifth of the rings there.
  const int kRings = ringpipe::testing::under_sanitizer() ? 20'000 : 100'000;
  const auto r = parse_pipeline(chain_of_rings(kRings), "big.yaml", no_env);
  ASSERT_TRUE(r) << r.error().diagnostics.front().to_string();
  EXPECT_EQ(r->rings.size(), static_cast<std::size_t>(kRings));
  EXPECT_EQ(r->processors.size(), static_cast<std::size_t>(kRings - 1));
}

TEST(PipelineScale, StillReportsEveryDuplicateAndUnknownRingAmongMany) {
  std::string y = chain_of_rings(2'000);
  y.insert(y.find("sources:"), "  r7: {size: 1MiB}\n");  // a duplicate ring name
  y += "  extra: {type: prometheus, input: nope, listen: 127.0.0.1:9103}\n";
  const auto r = parse_pipeline(y, "big.yaml", no_env);
  ASSERT_FALSE(r);
  const std::string m = r.error().message();
  EXPECT_NE(m.find("rings: found \"r7\" a second time"), std::string::npos) << m.substr(0, 500);
  EXPECT_NE(m.find("found ring \"nope\", which is not defined"), std::string::npos) << m.substr(0, 500);
}

}  // namespace
}  // namespace ringpipe::config
