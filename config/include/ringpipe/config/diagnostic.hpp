#pragma once
// Config errors: every problem found in a file, each with its position, so
// `ringpipe validate` can print them all at once.
//
// Diagnostic   one problem: "file:line:column: what was found, what was expected".
// ConfigError  all the problems of one load, in file order.
// Failures are values (ConfigResult); nothing here throws or allocates beyond
// the strings it holds.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

#include "ringpipe/common/result.hpp"

namespace ringpipe::config {

// A place in a config file: 1-based line and column (0 when unknown, e.g. a
// file that could not be read). Plain value; safe to copy between threads.
struct Position {
  std::string file;
  std::uint32_t line = 0;
  std::uint32_t column = 0;

  friend bool operator==(const Position&, const Position&) = default;
};

// The position of a value read from a file, kept for diagnostics. It is not
// part of the value: two values that differ only in where they were written
// compare equal, so moving a section within the file changes nothing on
// reload. Compared with a Position, it is that Position.
struct WrittenAt : Position {
  WrittenAt() = default;
  WrittenAt(Position p) : Position(std::move(p)) {}  // NOLINT(google-explicit-constructor): every Position converts
  friend bool operator==(const WrittenAt&, const WrittenAt&) noexcept { return true; }
  friend bool operator==(const WrittenAt& a, const Position& b) { return static_cast<const Position&>(a) == b; }
};

// One problem found in a config file. Plain value.
struct Diagnostic {
  Position position;
  std::string message;  // what was found, what was expected

  // "file:line:column: message" ("file: message" when the line is unknown).
  [[nodiscard]] std::string to_string() const;
};

// Every problem of one load. Plain value; safe to copy between threads.
struct ConfigError {
  std::vector<Diagnostic> diagnostics;

  // One diagnostic per line, in the order they were found.
  [[nodiscard]] std::string message() const;
  // The same text as a ringpipe::Error (errc::invalid_argument), for callers
  // that only pass errors on.
  [[nodiscard]] Error to_error() const;
};

// What loading a config returns: the validated value or every problem found.
template <class T>
using ConfigResult = tl::expected<T, ConfigError>;

}  // namespace ringpipe::config
