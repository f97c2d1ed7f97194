#pragma once
// RINGPIPE_ASSERT: bugs abort, also in release builds, with the condition and why.

#include <cstdio>
#include <cstdlib>

#define RINGPIPE_ASSERT(cond, why)                                                               \
  do {                                                                                           \
    if (!(cond)) [[unlikely]] {                                                                  \
      std::fprintf(stderr, "%s:%d: assertion failed: %s: %s\n", __FILE__, __LINE__, #cond, why); \
      std::abort();                                                                              \
    }                                                                                            \
  } while (false)
