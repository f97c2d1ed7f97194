// The real `ringpipe` binary: help, validate and the ring subcommands.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <array>

#include "e2e_util.hpp"

namespace ringpipe::apps {
namespace {

using e2e::run;

// Whether a `tail` process's (non-durable) reader is attached to `ring`.
bool tail_attached(const ring::Ring& ring) {
  for (const auto& r : ring.stats().readers)
    if (r.name.rfind("tail-", 0) == 0 && r.alive) return true;
  return false;
}

TEST(CliE2e, HelpListsEveryCommandAndEachCommandHasItsOwn) {
  testing::ScratchDir dir;
  const auto r = run(dir, {"--help"});
  EXPECT_EQ(r.code, 0);
  for (const char* c : {"run", "validate", "stat", "tail", "component", "ring"})
    EXPECT_NE(r.out.find(std::string("ringpipe ") + c), std::string::npos) << c;
  const auto run_help = run(dir, {"run", "--help"});
  EXPECT_EQ(run_help.code, 0);
  EXPECT_NE(run_help.out.find("SIGHUP"), std::string::npos);
  const auto ring_help = run(dir, {"ring", "--help"});
  EXPECT_NE(ring_help.out.find("rm-reader"), std::string::npos);
  EXPECT_EQ(run(dir, {"frobnicate"}).code, 2);
}

TEST(CliE2e, ValidatePrintsEveryErrorWithItsPositionAndExits1) {
  testing::ScratchDir dir;
  const std::string file = dir.file("bad.yaml");
  e2e::write_text(file, R"(rings:
  raw: {size: 1MiB, overflw: block}
sources:
  s: {type: statsd, listen: [tcp://127.0.0.1:1], output: nowhere}
processors:
  agg: {type: aggregate, input: raw, output: raw}
)");
  const auto r = run(dir, {"validate", file});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(
      r.err,
      file +
          R"(:2:21: ring "raw": found unknown key "overflw", expected one of: size, overflow, lanes, max_readers, max_record, reader_timeout (did you mean "overflow"?)
)" + file +
          R"(:4:58: source "s" output: found ring "nowhere", which is not defined under rings, expected one of: raw
)" + file +
          R"(:6:46: processor "agg" output: found "raw", the processor's own input, expected a different ring
)");
}

TEST(CliE2e, ValidateAcceptsAGoodFile) {
  testing::ScratchDir dir;
  const std::string file = dir.file("good.yaml");
  e2e::write_text(file, R"(rings: {raw: {size: 1MiB}, metrics: {size: 1MiB}}
sources: {s: {type: statsd, listen: [udp://127.0.0.1:0], output: raw}}
processors: {agg: {type: aggregate, input: raw, output: metrics}}
exporters: {prom: {type: prometheus, input: metrics, listen: 127.0.0.1:0}}
)");
  const auto r = run(dir, {"validate", file});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(run(dir, {"validate"}).code, 2);
}

// `ringpipe run --drain-timeout X` takes a spelling exactly when a pipeline
// file takes `reader_timeout: X`: a bare "10" is refused by both (it used to
// be 10 milliseconds on the command line).
TEST(CliE2e, DrainTimeoutTakesTheSpellingsAPipelineFileTakes) {
  testing::ScratchDir dir;
  const std::string file = dir.file("timeout.yaml");
  for (const std::string d : {"10", "250", "0", "10s", "500ms", "1m30s", "1.5s", "250us", "10x"}) {
    SCOPED_TRACE(d);
    e2e::write_text(file, "rings: {raw: {size: 1MiB, reader_timeout: \"" + d +
                              "\"}}\n"
                              "sources: {s: {type: statsd, listen: [udp://127.0.0.1:0], output: raw}}\n"
                              "exporters: {prom: {type: prometheus, input: raw, listen: 127.0.0.1:0}}\n");
    const auto validated = run(dir, {"validate", file});
    ASSERT_TRUE(validated.code == 0 || validated.code == 1) << validated.err;
    // A refused option is a usage error (2) before the pipeline is read; a
    // taken one gets as far as the missing pipeline file (78).
    const auto started = run(dir, {"run", dir.file("missing.yaml"), "--drain-timeout", d});
    ASSERT_TRUE(started.code == 2 || started.code == 78) << started.err;
    EXPECT_EQ(started.code == 78, validated.code == 0) << started.err << validated.err;
  }
}

TEST(CliE2e, RingCreateInspectTailAndRemoveReader) {
  testing::ScratchDir dir;
  const std::string path = dir.file("r");
  auto c = run(dir, {"ring", "create", path, "--size", "1MiB", "--lanes", "2", "--readers", "4", "--overflow", "drop"});
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(run(dir, {"ring", "create", path}).code, 1);  // exists

  auto ring = ring::Ring::open(path);
  ASSERT_TRUE(ring) << ring.error().message();
  EXPECT_EQ(ring->lanes(), 2u);
  EXPECT_EQ(ring->lane_capacity(), 512u * 1024);
  EXPECT_EQ(ring->max_readers(), 4u);
  EXPECT_EQ(ring->overflow(), ring::Overflow::kDrop);

  // A durable reader that is gone, for inspect and rm-reader.
  { ASSERT_TRUE(ring::Reader::attach(*ring, "gone")); }

  e2e::Proc tail({"ring", "tail", path, "--count", "2", "--duration", "20s"}, dir.file("tail.out"),
                 dir.file("tail.err"));
  ASSERT_TRUE(testing::wait_until([&] { return tail_attached(*ring); }, std::chrono::seconds(10)));
  auto producer = ring::Producer::attach(*ring);
  ASSERT_TRUE(producer);
  std::array<std::byte, 512> buf{};
  sample::BatchWriter w(buf, 7, 0);
  const std::array<sample::Tag, 1> tags = {sample::Tag{"host", "a"}};
  ASSERT_TRUE(w.append(sample::Kind::kCounter, "requests", 3, 0.5, tags));
  const std::size_t used = w.finish();
  ASSERT_EQ(producer->try_write(sample::kSampleBatchRecord, std::span(buf.data(), used)), ring::WriteStatus::kOk);
  const std::array<std::byte, 3> raw = {std::byte{0xde}, std::byte{0xad}, std::byte{0x01}};
  ASSERT_EQ(producer->try_write(99, raw), ring::WriteStatus::kOk);
  ASSERT_EQ(tail.wait(std::chrono::seconds(10)), 0);
  const std::string out = tail.out();
  EXPECT_NE(out.find("sample batch: 1 samples, source 7"), std::string::npos) << out;
  EXPECT_NE(out.find("counter requests 3 @0.5 {host=a}"), std::string::npos) << out;
  EXPECT_NE(out.find("type 99 type unknown, 3 bytes"), std::string::npos) << out;
  EXPECT_NE(out.find("0000: de ad 01"), std::string::npos) << out;

  const auto inspect = run(dir, {"ring", "inspect", path});
  ASSERT_EQ(inspect.code, 0) << inspect.err;
  EXPECT_NE(inspect.out.find("2 lanes x 512.0KiB"), std::string::npos) << inspect.out;
  EXPECT_NE(inspect.out.find("overflow: drop, max readers 4"), std::string::npos) << inspect.out;
  EXPECT_NE(inspect.out.find("reader gone slot"), std::string::npos) << inspect.out;
  EXPECT_NE(inspect.out.find("not-alive"), std::string::npos) << inspect.out;

  const auto rm = run(dir, {"ring", "rm-reader", path, "gone"});
  EXPECT_EQ(rm.code, 0) << rm.err;
  for (const auto& r : ring->stats().readers) EXPECT_NE(r.name, "gone");
  EXPECT_EQ(run(dir, {"ring", "rm-reader", path, "gone"}).code, 1);
  EXPECT_EQ(run(dir, {"ring", "inspect", dir.file("missing")}).code, 1);
}

// A reader name is bytes from a shared file: `ring inspect` must not pass
// terminal control sequences through. And `ring tail` must say when it
// skips a corrupt record instead of skipping it silently.
TEST(CliE2e, InspectEscapesReaderNamesAndTailReportsWhatItSkipped) {
  testing::ScratchDir dir;
  const std::string path = dir.file("r");
  ASSERT_EQ(run(dir, {"ring", "create", path, "--size", "64KiB", "--lanes", "1", "--readers", "4"}).code, 0);
  auto ring = ring::Ring::open(path);
  ASSERT_TRUE(ring);
  { ASSERT_TRUE(ring::Reader::attach(*ring, "evil\x1b]0;owned\x07\x1b[2J")); }
  const auto inspect = run(dir, {"ring", "inspect", path});
  ASSERT_EQ(inspect.code, 0) << inspect.err;
  EXPECT_EQ(inspect.out.find('\x1b'), std::string::npos) << "an escape byte reached the terminal";
  EXPECT_EQ(inspect.out.find('\x07'), std::string::npos);
  EXPECT_NE(inspect.out.find("evil\\x1b]0;owned\\x07\\x1b[2J"), std::string::npos) << inspect.out;

  // The lane's first record gets a length no record can have.
  auto producer = ring::Producer::attach(*ring);
  ASSERT_TRUE(producer);
  const std::array<std::byte, 8> rec{};
  ASSERT_EQ(producer->try_write(99, rec), ring::WriteStatus::kOk);
  {
    const std::uint32_t huge = 0x7fffffff;
    const int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    const std::uint64_t data = 4096 * 2;  // 1 lane, 4 readers: the data area starts at the third page
    ASSERT_EQ(::pwrite(fd, &huge, sizeof huge, static_cast<off_t>(data)), 4);
    ::close(fd);
  }
  e2e::Proc tail({"ring", "tail", path, "--from", "oldest", "--duration", "1s"}, dir.file("tail.out"),
                 dir.file("tail.err"));
  ASSERT_EQ(tail.wait(std::chrono::seconds(10)), 0);
  EXPECT_NE(tail.err().find("skipped 1 corrupt record"), std::string::npos) << tail.err();
}

// `tail RING FILE` and the live `stat FILE`, on a pipeline whose supervisor is
// not running: both read the rings named by the file straight from shared memory.
TEST(CliE2e, TailAndLiveStatReadAPipelinesRingsWithoutItsSupervisor) {
  testing::ScratchDir dir;
  const std::string file = dir.file("p.yaml");
  e2e::write_text(file, "pipeline: cli\nrun_dir: " + dir.path().string() + R"(
rings: {raw: {size: 1MiB, lanes: 2}, metrics: {size: 1MiB}}
sources: {s: {type: statsd, listen: [udp://127.0.0.1:0], output: raw}}
processors: {agg: {type: aggregate, input: raw, output: metrics}}
exporters: {prom: {type: prometheus, input: metrics, listen: 127.0.0.1:0}}
)");
  const std::string raw = (dir.path() / "cli" / "raw").string();
  ASSERT_EQ(run(dir, {"ring", "create", raw, "--size", "1MiB", "--lanes", "2"}).code, 0);
  auto ring = ring::Ring::open(raw);
  ASSERT_TRUE(ring);

  EXPECT_EQ(run(dir, {"tail", "nosuch", file}).code, 2);  // usage: the pipeline has no such ring
  e2e::Proc tail({"tail", "raw", file, "--count", "1", "--duration", "20s"}, dir.file("tail.out"),
                 dir.file("tail.err"));
  ASSERT_TRUE(testing::wait_until([&] { return tail_attached(*ring); }, std::chrono::seconds(10)));
  auto producer = ring::Producer::attach(*ring);
  ASSERT_TRUE(producer);
  std::array<std::byte, 512> buf{};
  sample::BatchWriter w(buf, 3, 0);
  const std::array<sample::Tag, 1> tags = {sample::Tag{"room", "lab"}};
  ASSERT_TRUE(w.append(sample::Kind::kGauge, "temperature", 21.5, 1, tags));
  ASSERT_EQ(producer->try_write(sample::kSampleBatchRecord, std::span(buf.data(), w.finish())), ring::WriteStatus::kOk);
  ASSERT_EQ(tail.wait(std::chrono::seconds(10)), 0) << tail.err();
  EXPECT_NE(tail.out().find("gauge temperature 21.5 {room=lab}"), std::string::npos) << tail.out();

  // The live view redraws every interval until SIGTERM, then exits 0.
  e2e::Proc stat({"stat", file, "--interval", "100ms"}, dir.file("stat.out"), dir.file("stat.err"));
  auto frames = [&] {
    const std::string out = stat.out();
    std::size_t n = 0;
    for (std::size_t at = out.find("\x1b[H\x1b[2J"); at != std::string::npos; at = out.find("\x1b[H\x1b[2J", at + 1))
      ++n;
    return n;
  };
  EXPECT_TRUE(testing::wait_until([&] { return frames() >= 4; }, std::chrono::seconds(10))) << stat.out();
  stat.signal(SIGTERM);
  EXPECT_EQ(stat.wait(std::chrono::seconds(5)), 0) << stat.err();
  const std::string out = stat.out();
  const std::string last = out.substr(out.rfind("\x1b[H\x1b[2J"));
  EXPECT_NE(last.find("supervisor: no status"), std::string::npos) << last;  // never started
  EXPECT_NE(last.find("\nraw "), std::string::npos) << last;
  EXPECT_NE(last.find(" 2x"), std::string::npos) << last;
}

// The fill of a ring is how close its producers are to being held back: the
// fullest lane of a gating reader, not the ring-wide average, and never a
// non-gating reader (lapped, not waited for). One lane of four is 75 % full
// for the gating reader (18.75 % of the ring); a non-gating reader is further
// behind on another lane (93.75 % of it) and counts for nothing.
TEST(CliE2e, StatFillIsTheFullestLaneOfAGatingReader) {
  testing::ScratchDir dir;
  const std::string file = dir.file("p.yaml");
  e2e::write_text(file, "pipeline: fill\nrun_dir: " + dir.path().string() + R"(
rings: {raw: {size: 256KiB, lanes: 4}, metrics: {size: 1MiB}}
sources: {s: {type: statsd, listen: [udp://127.0.0.1:0], output: raw}}
processors: {agg: {type: aggregate, input: raw, output: metrics}}
exporters: {prom: {type: prometheus, input: metrics, listen: 127.0.0.1:0}}
)");
  ring::RingOptions o;
  o.lane_capacity_bytes = 64 * 1024;
  o.lanes = 4;
  auto ring = ring::Ring::create((dir.path() / "fill" / "raw").string(), o);
  ASSERT_TRUE(ring) << ring.error().message();

  ring::ReaderOptions not_gating;
  not_gating.gating = false;
  auto remote = ring::Reader::attach(*ring, "remote", not_gating);
  ASSERT_TRUE(remote);
  auto lane0 = ring::Producer::attach(*ring);
  auto lane1 = ring::Producer::attach(*ring);
  ASSERT_TRUE(lane0 && lane1);
  // 1008 payload bytes + the 16-byte header: 1 KiB records, 64 to a lane.
  const std::array<std::byte, 1008> payload{};
  for (int i = 0; i < 60; ++i) ASSERT_EQ(lane1->try_write(99, payload), ring::WriteStatus::kOk);
  ring::ReaderOptions latest;
  latest.start = ring::StartAt::kLatest;
  auto slow = ring::Reader::attach(*ring, "slow", latest);  // gating, sees nothing of lane 1
  ASSERT_TRUE(slow);
  for (int i = 0; i < 48; ++i) ASSERT_EQ(lane0->try_write(99, payload), ring::WriteStatus::kOk);

  const auto stat = run(dir, {"stat", file, "--once"});
  ASSERT_EQ(stat.code, 0) << stat.err;
  EXPECT_NE(stat.out.find("fill 75.0% (slow lane 0)"), std::string::npos) << stat.out;
  EXPECT_NE(stat.out.find("\n  slow         active"), std::string::npos) << stat.out;
  EXPECT_NE(stat.out.find("\n  remote       loose"), std::string::npos) << stat.out;

  // Once the gating reader has read everything, the ring is empty for its
  // producers, however far behind the non-gating reader is.
  while (slow->poll([](const ring::RecordView&) {}) > 0) {
  }
  const auto drained = run(dir, {"stat", file, "--once"});
  ASSERT_EQ(drained.code, 0) << drained.err;
  EXPECT_NE(drained.out.find("fill 0.0%\n"), std::string::npos) << drained.out;
}

TEST(CliE2e, ComponentWithABadConfigExits78) {
  testing::ScratchDir dir;
  const std::string file = dir.file("bad.yaml");
  e2e::write_text(file, "rings: {raw: {size: 3}}\n");
  EXPECT_EQ(run(dir, {"component", "statsd", "--config", file}).code, 78);
  const std::string good = dir.file("good.yaml");
  e2e::write_text(good, R"(run_dir: )" + dir.path().string() + R"(
rings: {raw: {size: 1MiB}, metrics: {size: 1MiB}}
sources: {s: {type: statsd, listen: [udp://127.0.0.1:0], output: raw}}
processors: {agg: {type: aggregate, input: raw, output: metrics}}
exporters: {prom: {type: prometheus, input: metrics, listen: 127.0.0.1:0}}
)");
  EXPECT_EQ(run(dir, {"component", "nosuch", "--config", good}).code, 78);
}

}  // namespace
}  // namespace ringpipe::apps
