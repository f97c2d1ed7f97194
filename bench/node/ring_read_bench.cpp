// ring_read_bench: the C++ reader of bench/node/bench.js's reader rows, over
// the same ring in the same run. A named durable reader takes every record of
// the ring and reports, as one JSON line:
//   views:   records handed in place (no decode), as the JS Reader's poll;
//   decode:  every sample decoded by sample::BatchReader (its fields viewed);
//   objects: every sample decoded into an owned object (name, member and tags
//            copied into strings), as decodeSampleBatch builds JS objects.
// Each mode opens the ring afresh and attaches its own reader (name prefix +
// mode), so the three read the same records and each maps the ring's pages
// in on its first touch, as each JS Reader (its own Ring::open) does.
//
//   ring_read_bench RING [NAME_PREFIX]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "ringpipe/ring/ring.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace {

using ringpipe::ring::Reader;
using ringpipe::ring::RecordView;
using ringpipe::ring::Ring;
namespace sample = ringpipe::sample;

struct Owned {
  std::string kind;
  std::string name;
  double value = 0;
  double sample_rate = 1;
  std::int64_t timestamp_ns = 0;
  std::string member;
  std::vector<std::pair<std::string, std::string>> tags;
};

struct Result {
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
  std::uint64_t samples = 0;
  std::uint64_t check = 0;  // keeps the work from being optimised away
  double seconds = 0;
};

template <typename F>
Result read_all(const char* path, const std::string& name, F&& per_record) {
  auto ring = Ring::open(path);
  if (!ring) {
    std::fprintf(stderr, "ring_read_bench: %s\n", ring.error().message().c_str());
    std::exit(1);
  }
  auto reader = Reader::attach(*ring, name);
  if (!reader) {
    std::fprintf(stderr, "ring_read_bench: %s\n", reader.error().message().c_str());
    std::exit(1);
  }
  Result r;
  const auto t0 = std::chrono::steady_clock::now();
  while (reader->poll([&](const RecordView& v) {
    ++r.records;
    r.bytes += v.payload.size();
    per_record(v, r);
  }) > 0) {
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

void print(const char* mode, const Result& r, bool last) {
  std::printf("\"%s\": {\"records\": %llu, \"bytes\": %llu, \"samples\": %llu, \"seconds\": %.6f, \"check\": %llu}%s",
              mode, static_cast<unsigned long long>(r.records), static_cast<unsigned long long>(r.bytes),
              static_cast<unsigned long long>(r.samples), r.seconds, static_cast<unsigned long long>(r.check),
              last ? "}\n" : ", ");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: ring_read_bench RING [NAME_PREFIX]\n");
    return 2;
  }
  const std::string prefix = argc > 2 ? argv[2] : "cpp-bench";
  const Result views = read_all(argv[1], prefix + "-views", [](const RecordView& v, Result& r) {
    if (!v.payload.empty()) r.check += static_cast<std::uint8_t>(v.payload[0]);
  });
  const Result decode = read_all(argv[1], prefix + "-decode", [](const RecordView& v, Result& r) {
    if (v.type != sample::kSampleBatchRecord) return;
    sample::BatchReader br(v.payload);
    while (auto s = br.next()) {
      ++r.samples;
      r.check += s->name.size() + s->str_value.size();
      s->for_each_tag([&](const sample::Tag& t) { r.check += t.key.size() + t.value.size(); });
    }
  });
  std::vector<Owned> batch;
  const Result objects = read_all(argv[1], prefix + "-objects", [&batch](const RecordView& v, Result& r) {
    if (v.type != sample::kSampleBatchRecord) return;
    batch.clear();
    sample::BatchReader br(v.payload);
    while (auto s = br.next()) {
      Owned o;
      o.kind = sample::kind_name(s->kind);
      o.name = s->name;
      o.value = s->value;
      o.sample_rate = s->sample_rate;
      o.timestamp_ns = s->timestamp_ns;
      if (s->kind == sample::Kind::kSet) o.member = s->str_value;
      s->for_each_tag([&](const sample::Tag& t) { o.tags.emplace_back(t.key, t.value); });
      batch.push_back(std::move(o));
    }
    r.samples += batch.size();
    for (const Owned& o : batch) r.check += o.name.size() + o.tags.size();
  });
  std::printf("{");
  print("views", views, false);
  print("decode", decode, false);
  print("objects", objects, true);
  return 0;
}
