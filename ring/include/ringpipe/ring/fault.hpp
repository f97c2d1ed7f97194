#pragma once
// Test hook: the producer calls the installed hook at each step of a write so
// a test can kill the process exactly there. No hook is installed in normal
// runs; the check is one relaxed load. Process-wide; set before producing.

namespace ringpipe::ring {

enum class FaultPoint {
  kAfterIntent,   // claim recorded in shared memory, nothing written yet
  kAfterPad,      // wrap pad header written at the lane's end, the claim's record not yet
  kMidPayload,    // payload written, record header not yet written
  kAfterFinish,   // record complete, not yet published
  kAfterCommit,   // publish(): batch committed (first seq stored); counters, next_seq, tail not yet
  kAfterPublish,  // tail published, readers not yet woken
};

using FaultHook = void (*)(FaultPoint);
void set_fault_hook(FaultHook hook) noexcept;

}  // namespace ringpipe::ring
