#pragma once
// The BatchTarget that writes sample batches into a ring: every transport
// thread attaches its own ring::Producer (its own lane). The Ring must outlive
// every target made from it. Claims are capped at the ring's max_record_bytes.

#include <chrono>
#include <cstddef>

#include "ringpipe/ingest/batch_target.hpp"
#include "ringpipe/ring/ring.hpp"

namespace ringpipe::ingest {

struct RingTargetOptions {
  std::size_t claim_bytes = 64 * 1024;          // per batch record; more samples rotate to a new record
  std::chrono::milliseconds claim_timeout{50};  // `block` rings: wait this long for space, then drop
};

// A factory attaching one Producer per call; fails like ring::Producer::attach.
[[nodiscard]] TargetFactory ring_target_factory(const ring::Ring& ring, const RingTargetOptions& options = {});

}  // namespace ringpipe::ingest
