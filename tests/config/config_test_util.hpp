#pragma once
// Helpers for the config tests: diagnostics as plain strings.

#include <string>
#include <vector>

#include "ringpipe/config/diagnostic.hpp"

namespace ringpipe::config::testing {

template <class R>
std::vector<std::string> messages(const R& result) {
  std::vector<std::string> out;
  if (result) return out;
  for (const auto& d : result.error().diagnostics) out.push_back(d.to_string());
  return out;
}

}  // namespace ringpipe::config::testing
