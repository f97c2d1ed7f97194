#pragma once
// Test-only fault injection: a sample that kills the component reading it, so
// tests can prove that a record crashing its reader is quarantined (see
// docs/guarantees.md). The call sites use RINGPIPE_TEST_CRASH_POINT, which
// expands to nothing unless the build defines RINGPIPE_TEST_HOOKS (CMake
// option RINGPIPE_TEST_HOOKS, on in the dev, test, asan and tsan presets only): a
// release build has no code that reads the variable below.
//
// RINGPIPE_TEST_CRASH=<component kind>:<sample name>, e.g.
// `processor:e2e.poison` or `exporter:e2e_poison`: the first process of that
// kind that meets a sample of that name calls abort(). Any thread.

#include <string_view>

namespace ringpipe::test_hooks {

// abort()s when RINGPIPE_TEST_CRASH names `component` and `sample_name`.
void crash_if_poisoned(std::string_view component, std::string_view sample_name) noexcept;

}  // namespace ringpipe::test_hooks

#if defined(RINGPIPE_TEST_HOOKS) && RINGPIPE_TEST_HOOKS
#define RINGPIPE_TEST_CRASH_POINT(component, name) ::ringpipe::test_hooks::crash_if_poisoned(component, name)
#else
#define RINGPIPE_TEST_CRASH_POINT(component, name) ((void)0)
#endif
