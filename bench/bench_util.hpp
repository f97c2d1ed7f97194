#pragma once
// What the benchmarks share: timing a piece of work repeated for at least a
// minimum of the calling thread's CPU time. Single-threaded helpers; no allocation.

#include <sys/resource.h>
#include <time.h>

#include <cstdlib>

namespace ringpipe::bench {

// CPU seconds the calling thread has used.
inline double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// What the whole process has used so far: CPU seconds (user + system, every
// thread) and minor page faults.
struct ProcessUsage {
  double cpu_s = 0;
  long minflt = 0;
};
inline ProcessUsage process_usage() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return ProcessUsage{static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                          static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6,
                      ru.ru_minflt};
}

// Calls f() until at least `min_seconds` of this thread's CPU time have
// passed; returns that CPU time and the number of calls in `reps`. CPU time,
// not wall time: a figure per core, which other processes competing for the
// cores (a compiler beside the benchmark) do not divide.
template <class F, class N>
double time_repeated(double min_seconds, F&& f, N& reps) {
  reps = 0;
  // RINGPIPE_BENCH_REPS=N: exactly N calls whatever the time, so that an
  // instruction count (callgrind) of two builds covers the same work.
  const char* fixed = std::getenv("RINGPIPE_BENCH_REPS");
  const long want = fixed != nullptr ? std::strtol(fixed, nullptr, 10) : 0;
  const double start = thread_cpu_seconds();
  double elapsed = 0;
  do {
    f();
    ++reps;
    elapsed = thread_cpu_seconds() - start;
  } while (want > 0 ? reps < want : elapsed < min_seconds);
  return elapsed;
}

}  // namespace ringpipe::bench
