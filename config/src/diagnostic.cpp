#include "ringpipe/config/diagnostic.hpp"

namespace ringpipe::config {

std::string Diagnostic::to_string() const {
  std::string out = position.file.empty() ? std::string("<config>") : position.file;
  if (position.line != 0) {
    out += ':' + std::to_string(position.line) + ':' + std::to_string(position.column);
  }
  out += ": ";
  out += message;
  return out;
}

std::string ConfigError::message() const {
  std::string out;
  for (const auto& d : diagnostics) {
    if (!out.empty()) out += '\n';
    out += d.to_string();
  }
  return out;
}

Error ConfigError::to_error() const { return Error{std::make_error_code(std::errc::invalid_argument), message()}; }

}  // namespace ringpipe::config
