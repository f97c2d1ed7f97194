#pragma once
// Shared body of the parser fuzz targets: parses the input with options
// chosen by its first byte, into a small batch that rotates (so the rotation
// path is fuzzed too), and aborts if an invariant breaks: every batch decodes,
// and every parsed sample is written, dropped or too large — nothing lost.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "ringpipe/ingest/parse.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace ringpipe::ingest::fuzz {

#define RINGPIPE_FUZZ_CHECK(cond)                                 \
  do {                                                            \
    if (!(cond)) {                                                \
      std::fprintf(stderr, "fuzz invariant failed: %s\n", #cond); \
      std::abort();                                               \
    }                                                             \
  } while (false)

class Batches {
 public:
  explicit Batches(std::size_t bytes) : buf_(bytes), writer_(buf_, 1, 0), out_(&writer_, &Batches::rotate, this) {}

  SampleOutput& out() { return out_; }
  void finish() { check_and_reset(); }
  [[nodiscard]] std::uint64_t decoded() const { return decoded_; }

 private:
  static bool rotate(void* self) noexcept {
    static_cast<Batches*>(self)->check_and_reset();
    return true;
  }
  void check_and_reset() noexcept {
    const std::size_t n = writer_.finish();
    sample::BatchReader r(std::span<const std::byte>(buf_.data(), n));
    std::uint32_t count = 0;
    while (auto s = r.next()) {
      RINGPIPE_FUZZ_CHECK(s->name.size() > 0);
      RINGPIPE_FUZZ_CHECK(s->sample_rate > 0 && s->sample_rate <= 1);
      ++count;
    }
    RINGPIPE_FUZZ_CHECK(r.error() == sample::DecodeError::kNone);
    RINGPIPE_FUZZ_CHECK(count == r.header().sample_count);
    decoded_ += count;
    writer_.reset(buf_, 0);
  }

  std::vector<std::byte> buf_;
  sample::BatchWriter writer_;
  SampleOutput out_;
  std::uint64_t decoded_ = 0;
};

// Runs `parse(packet, out, counters)` and checks the accounting.
template <class Parse>
void check(const std::uint8_t* data, std::size_t size, Parse&& parse) {
  const std::string_view packet(reinterpret_cast<const char*>(data), size);
  Batches batches(data != nullptr && size > 0 && (data[0] & 0x80) ? 256 : 64 * 1024);
  ParseCounters counters;
  parse(packet, batches.out(), counters);
  batches.finish();
  const SampleOutput& out = batches.out();
  RINGPIPE_FUZZ_CHECK(out.written() + out.dropped() + out.too_large() == counters.samples);
  RINGPIPE_FUZZ_CHECK(batches.decoded() == out.written());
  RINGPIPE_FUZZ_CHECK(counters.lines <= size);
}

}  // namespace ringpipe::ingest::fuzz
