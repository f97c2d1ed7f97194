#pragma once
// A pipeline file's text parsed for a test: a file that does not load fails
// the test (with its diagnostics) and gives an empty pipeline. Header-only:
// the tests that include it link ringpipe::config.

#include <gtest/gtest.h>

#include <string>

#include "ringpipe/config/pipeline.hpp"

namespace ringpipe::testing {

inline config::PipelineConfig parse_pipeline(const std::string& text, const std::string& file = "p.yaml") {
  auto p = config::parse_pipeline(text, file);
  EXPECT_TRUE(p) << (p ? "" : p.error().message());
  return p ? *p : config::PipelineConfig{};
}

}  // namespace ringpipe::testing
