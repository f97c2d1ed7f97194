// libFuzzer target for the remote_write receiver's decoder: snappy, protobuf
// and the conversion of series into sample batches (also built as a corpus
// replayer). The first byte picks the limits; the rest is the request body.
#include "fuzz_check.hpp"
#include "remote_write_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringpipe::ingest;
  if (size == 0) return 0;
  static RemoteWriteDecoder* decoders[4] = {};
  const unsigned key = data[0] & 3;
  if (decoders[key] == nullptr) {
    RemoteWriteLimits l;
    l.max_body_bytes = key & 1 ? 4096 : 1 << 20;
    l.max_uncompressed_bytes = 8 * l.max_body_bytes;
    l.max_labels = key & 2 ? 2 : 64;
    decoders[key] = new RemoteWriteDecoder(l);
  }
  RemoteWriteDecoder& d = *decoders[key];
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  // A small batch that rotates (data[0] & 0x80) or a roomy one.
  fuzz::Batches batches(data[0] & 0x80 ? 256 : 64 * 1024);
  ParseCounters c;
  const DecodeStatus st = d.decode(body, c);
  if (st != DecodeStatus::kNone) {
    RINGPIPE_FUZZ_CHECK(c.total_errors() == 1);  // a refused request is counted once, by its reason
    return 0;
  }
  const std::uint64_t in_request = d.sample_count();
  RINGPIPE_FUZZ_CHECK(d.batch_bytes_bound() >= sizeof(ringpipe::sample::BatchHeader));
  const ConvertResult r = d.convert(batches.out(), c);
  batches.finish();
  const SampleOutput& out = batches.out();
  RINGPIPE_FUZZ_CHECK(r.series_rejected <= r.series);
  RINGPIPE_FUZZ_CHECK(c.lines == r.series);
  RINGPIPE_FUZZ_CHECK(c.samples <= in_request);
  RINGPIPE_FUZZ_CHECK(out.written() + out.dropped() + out.too_large() == c.samples);
  RINGPIPE_FUZZ_CHECK(batches.decoded() == out.written());
  RINGPIPE_FUZZ_CHECK((r.series_rejected == 0) == (r.first_reason == ParseError::kCount));
  return 0;
}
