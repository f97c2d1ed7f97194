#pragma once
// The processors' name for common::FlatIndex (ringpipe/common/flat_index.hpp).

#include "ringpipe/common/flat_index.hpp"

namespace ringpipe::processors::detail {
using FlatIndex = common::FlatIndex;
}  // namespace ringpipe::processors::detail
