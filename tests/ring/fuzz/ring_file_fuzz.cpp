// Fuzzes everything a process reads from a ring file: a small ring with
// records, readers and an open claim is built once; each input patches bytes
// of it (the header page, the lane and reader blocks, or the data) and then
// the file is opened, attached to, read, written and inspected. Nothing may
// crash, hang, or read outside the mapping; refusals must be clean errors.
//
// Input: [region:1][offset:2][bytes...]; region picks the part patched,
// offset is taken modulo that part's size.

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../../../ring/src/layout.hpp"
#include "ringpipe/ring/ring.hpp"

namespace {

using namespace ringpipe::ring;

struct Image {
  std::string path;
  std::vector<unsigned char> bytes;
  detail::Layout layout{};
};

Image build() {
  Image img;
  char tmpl[] = "/tmp/ringpipe-fuzz-XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  if (dir == nullptr) std::abort();
  img.path = std::string(dir) + "/ring";
  RingOptions o;
  o.lane_capacity_bytes = 4096;
  o.lanes = 2;
  o.max_readers = 4;
  o.overflow = Overflow::kBlock;
  o.reader_timeout = std::chrono::milliseconds(1);
  img.layout = detail::compute_layout(o.lane_capacity_bytes, o.lanes, o.max_readers);
  {
    auto ring = Ring::create(img.path, o);
    if (!ring) std::abort();
    auto r = Reader::attach(*ring, "proc");
    auto p = Producer::attach(*ring);
    if (!r || !p) std::abort();
    const std::vector<std::byte> rec(40, std::byte{0x42});
    for (int i = 0; i < 150; ++i) {  // past one lap, read as it goes
      (void)p->try_write(1, rec);
      r->poll([](const RecordView&) {});
    }
    for (int i = 0; i < 3; ++i) (void)p->try_append(1, rec);  // an unpublished batch
    (void)p->try_claim(64);                                   // and an open claim
    // Leak nothing: the producer publishes the batch at destruction, but
    // we want the file as a crashed producer leaves it, so copy it now.
    std::vector<unsigned char> bytes(img.layout.file_bytes);
    const int fd = ::open(img.path.c_str(), O_RDONLY);
    if (fd < 0 || ::pread(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) std::abort();
    ::close(fd);
    img.bytes = std::move(bytes);
  }
  return img;
}

void exercise(const std::string& path) {
  auto ring = Ring::open(path);
  if (!ring) return;  // refused cleanly
  (void)ring->stats();
  {
    auto r = Reader::attach(*ring, "proc");  // resumes the slot from the file
    if (r) {
      std::size_t n = 0;
      for (int i = 0; i < 4; ++i) n += r->poll([](const RecordView& v) { (void)v.payload.size(); }, 1000);
      (void)n;
      (void)r->has_data();
    }
    ReaderOptions nd;
    nd.durable = false;
    auto t = Reader::attach(*ring, "tail", nd);
    auto p = Producer::attach(*ring);  // takes over a lane: adopts and cleans what it finds
    if (p) {
      const std::vector<std::byte> rec(24, std::byte{0x17});
      for (int i = 0; i < 300; ++i) {
        (void)p->try_write(1, rec);
        if (r) r->poll([](const RecordView&) {}, 16);
        if (t) t->poll([](const RecordView&) {}, 16);
      }
    }
  }
  (void)ring->stats();
  (void)ring->remove_reader("proc");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Image img = build();
  if (size < 3) return 0;
  std::vector<unsigned char> file = img.bytes;
  const detail::Layout& l = img.layout;
  std::uint64_t lo = 0, hi = 0;
  switch (data[0] % 4) {
    case 0:
      lo = 0;
      hi = detail::kPage;
      break;  // header
    case 1:
      lo = l.lanes_offset;
      hi = l.readers_offset;
      break;  // lane control
    case 2:
      lo = l.readers_offset;
      hi = l.data_offset;
      break;  // reader slots and cursors
    default:
      lo = l.data_offset;
      hi = l.file_bytes;
      break;  // records
  }
  const std::uint64_t at = lo + (std::uint64_t{data[1]} | std::uint64_t{data[2]} << 8) % (hi - lo);
  const std::size_t n = std::min<std::size_t>(size - 3, file.size() - at);
  std::memcpy(file.data() + at, data + 3, n);
  const int fd = ::open(img.path.c_str(), O_WRONLY | O_TRUNC);
  if (fd < 0) std::abort();
  if (::write(fd, file.data(), file.size()) != static_cast<ssize_t>(file.size())) std::abort();
  ::close(fd);
  exercise(img.path);
  return 0;
}
