#pragma once
// Result<T>: what fails for outside reasons (syscalls, parsing, config) returns
// this instead of throwing. Error = an std::error_code plus one line of context
// that reads "what: context: cause".

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

#include <tl/expected.hpp>

namespace ringpipe {

struct Error {
  std::error_code code;
  std::string context;

  // "context: strerror(code)", or just the context when the code says nothing more.
  [[nodiscard]] std::string message() const {
    if (!code) return context;
    return context + ": " + code.message();
  }
};

template <class T>
using Result = tl::expected<T, Error>;

using Status = Result<void>;

[[nodiscard]] inline tl::unexpected<Error> make_error(std::errc e, std::string context) {
  return tl::unexpected<Error>(Error{std::make_error_code(e), std::move(context)});
}

// The calling thread's errno, captured now.
[[nodiscard]] inline tl::unexpected<Error> errno_error(std::string context) {
  const int saved = errno;
  return tl::unexpected<Error>(Error{std::error_code(saved, std::system_category()), std::move(context)});
}

// An error with only a message (the code is std::errc::invalid_argument).
[[nodiscard]] inline tl::unexpected<Error> invalid(std::string context) {
  return make_error(std::errc::invalid_argument, std::move(context));
}

}  // namespace ringpipe
