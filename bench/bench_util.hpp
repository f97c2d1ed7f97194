#pragma once
// What the benchmarks share: timing a piece of work repeated for at least a
// minimum wall time. Single-threaded helpers; no allocation.

#include <chrono>

namespace ringpipe::bench {

// Calls f() until at least `min_seconds` have passed; returns the seconds
// taken and the number of calls in `reps`.
template <class F, class N>
double time_repeated(double min_seconds, F&& f, N& reps) {
  using Clock = std::chrono::steady_clock;
  reps = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  do {
    f();
    ++reps;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < min_seconds);
  return elapsed;
}

}  // namespace ringpipe::bench
