#pragma once
// Helpers for the config tests: diagnostics as plain strings.

#include <algorithm>
#include <string>
#include <string_view>
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

// Whether any message contains `text`.
inline bool has_message(const std::vector<std::string>& messages, std::string_view text) {
  return std::any_of(messages.begin(), messages.end(),
                     [&](const std::string& m) { return m.find(text) != std::string::npos; });
}

// Whether any diagnostic of a failed result contains `text`.
template <class R>
bool has_message(const R& result, std::string_view text) {
  const std::vector<std::string> got = messages(result);
  return std::any_of(got.begin(), got.end(), [&](const std::string& m) { return m.find(text) != std::string::npos; });
}

}  // namespace ringpipe::config::testing
