// A randomized model test of the ring protocol. Producers write records of
// random sizes whose payloads are full of words that look like the seqs and
// headers a reader will expect next; batches are published, claims are
// abandoned, producers detach and re-attach, forked producers die at random
// steps of a write, readers detach, resume and die. After every step each
// reader's deliveries are checked against what was written, and after a
// final drain the accounting must be exact:
//     records published = records read + lapped_records   (per reader)
// with nothing delivered twice, out of order, torn, or never published.
//
// The suite runs each overflow policy for a few seconds; a soak sets
// RINGPIPE_SOAK_SECONDS (the `ring.soak` test does, label soak).

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ringpipe/ring/fault.hpp"
#include "ringpipe/ring/ring.hpp"
#include "test_support.hpp"

namespace ringpipe::ring {
namespace {

using ringpipe::testing::ScratchDir;

constexpr std::uint32_t kLanes = 2;
constexpr std::uint64_t kCap = 4096;
constexpr std::uint32_t kMaxRecord = 512;

// Payload: writer id, writer seq, size, checksum, then hostile words.
struct Stamp {
  std::uint32_t writer;
  std::uint32_t size;
  std::uint64_t wseq;
  std::uint64_t checksum;
};

std::uint64_t checksum(const std::byte* p, std::size_t n, std::uint64_t salt) {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ salt;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= static_cast<std::uint8_t>(p[i]);
    h *= 0x100000001b3ULL;
  }
  return h;
}

// Words a reader might mistake for a header: seqs just ahead of the lane's
// next one, and "length | type 1" pairs.
std::vector<std::byte> make_payload(std::mt19937_64& rng, std::uint32_t writer, std::uint64_t wseq,
                                    std::uint64_t next_seq, std::size_t size) {
  std::vector<std::byte> out(std::max<std::size_t>(size, sizeof(Stamp)));
  for (std::size_t i = sizeof(Stamp); i + 8 <= out.size(); i += 8) {
    std::uint64_t w;
    switch (rng() % 3) {
      case 0:
        w = next_seq + rng() % 64;
        break;
      case 1:
        w = (rng() % 256) | (std::uint64_t{1} << 32);
        break;
      default:
        w = rng();
        break;
    }
    std::memcpy(&out[i], &w, 8);
  }
  const Stamp s{writer, static_cast<std::uint32_t>(out.size()), wseq,
                checksum(out.data() + sizeof(Stamp), out.size() - sizeof(Stamp), wseq)};
  std::memcpy(out.data(), &s, sizeof s);
  return out;
}

bool check_payload(std::span<const std::byte> in, Stamp& s) {
  if (in.size() < sizeof(Stamp)) return false;
  std::memcpy(&s, in.data(), sizeof s);
  return s.size == in.size() && s.checksum == checksum(in.data() + sizeof(Stamp), in.size() - sizeof(Stamp), s.wseq);
}

// What one reader has seen, checked record by record.
struct Seen {
  std::string name;
  std::uint64_t last_seq[kLanes] = {0, 0};
  std::map<std::uint32_t, std::uint64_t> last_wseq;  // per writer: deliveries keep each writer's order
  std::uint64_t delivered = 0;
  std::vector<std::string> errors;

  // next[lane]: the first seq not yet published (read before the poll; the
  // producers are in this thread, so it cannot move during one).
  void take(const RecordView& v, const std::uint64_t* next) {
    ++delivered;
    Stamp s{};
    if (v.lane >= kLanes) {
      errors.push_back(name + ": lane " + std::to_string(v.lane));
      return;
    }
    if (!check_payload(v.payload, s)) {
      errors.push_back(name + ": torn or forged payload at lane " + std::to_string(v.lane) + " seq " +
                       std::to_string(v.seq));
      return;
    }
    if (v.seq <= last_seq[v.lane]) {
      errors.push_back(name + ": seq " + std::to_string(v.seq) + " after " + std::to_string(last_seq[v.lane]));
    }
    // Every takeover adopts what a dead owner committed before anyone reads
    // again, so next_seq is the first seq never published.
    const std::uint64_t published = next[v.lane];
    if (v.seq >= published) {
      errors.push_back(name + ": seq " + std::to_string(v.seq) + " never published (next " + std::to_string(published) +
                       ")");
    }
    last_seq[v.lane] = v.seq;
    auto it = last_wseq.find(s.writer);
    if (it != last_wseq.end() && s.wseq <= it->second) {
      errors.push_back(name + ": writer " + std::to_string(s.writer) + " seq " + std::to_string(s.wseq) + " after " +
                       std::to_string(it->second) + " (duplicate or reordered)");
    }
    last_wseq[s.writer] = s.wseq;
  }
};

int soak_seconds() {
  const char* s = std::getenv("RINGPIPE_SOAK_SECONDS");
  return s ? std::max(1, std::atoi(s)) : 0;
}

// RINGPIPE_MODEL_SEED=N starts at seed N: a failure names its seed, and this
// replays it at once instead of after every seed before it.
std::uint64_t first_seed() {
  const char* s = std::getenv("RINGPIPE_MODEL_SEED");
  return s ? std::max<std::uint64_t>(1, std::strtoull(s, nullptr, 10)) : 1;
}

// Forked producers die here: a countdown of fault points, then _exit.
std::atomic<int> g_countdown{0};
void die_at_countdown(FaultPoint) {
  if (g_countdown.fetch_sub(1) == 1) ::_exit(0);
}

class Model {
 public:
  Model(Overflow policy, std::uint64_t seed, const std::string& path) : policy_(policy), rng_(seed) {
    RingOptions o;
    o.lane_capacity_bytes = kCap;
    o.lanes = kLanes;
    o.max_readers = 8;
    o.max_record_bytes = kMaxRecord;
    o.overflow = policy;
    o.reader_timeout = std::chrono::milliseconds(20);
    // Positions start near 2^64 - a few laps: the wrap of the counter itself is exercised too.
    o.initial_position = ~std::uint64_t{0} - 8 * kCap + 1 - 7;
    o.initial_position &= ~std::uint64_t{7};
    auto r = Ring::create(path, o);
    EXPECT_TRUE(r) << (r ? "" : r.error().message());
    ring_.emplace(std::move(*r));
    main_.name = "main";
    resumer_.name = "resumer";
    auto a = Reader::attach(*ring_, "main");
    EXPECT_TRUE(a);
    main_reader_.emplace(std::move(*a));
    attach_resumer();
    ReaderOptions nd;
    nd.durable = false;
    auto t = Reader::attach(*ring_, "tail", nd);
    EXPECT_TRUE(t);
    tail_reader_.emplace(std::move(*t));
    tail_.name = "tail";
    for (std::uint32_t k = 0; k < kLanes; ++k) attach_producer(k);
  }

  void step() {
    const unsigned op = rng_() % 100;
    const std::uint32_t k = static_cast<std::uint32_t>(rng_() % kLanes);
    if (op < 30) {
      write_one(k);
    } else if (op < 50) {
      write_batch(k);
    } else if (op < 53) {
      abandon_claim(k);
    } else if (op < 55) {
      producers_[k].reset();  // a clean detach, then a takeover by a new owner
      attach_producer(k);
    } else if (op < 57) {
      forked_producer_dies(k);
    } else if (op < 59) {
      resumer_reader_.reset();  // durable: resumes where it stopped
      attach_resumer();
    } else if (op < 60) {
      forked_reader_dies();
    } else if (op < 85) {
      poll(*main_reader_, main_, 1 + rng_() % 16);
    } else if (op < 95) {
      if (resumer_reader_) poll(*resumer_reader_, resumer_, 1 + rng_() % 16);
    } else {
      poll(*tail_reader_, tail_, 1 + rng_() % 16);
    }
    check_running_totals();
  }

  // Drains every reader and checks the exact accounting.
  void finish() {
    // A reader counts a loss when it reads the record after it (the seq gap):
    // one last record in each lane lets every reader account for all.
    for (std::uint32_t k = 0; k < kLanes; ++k) {
      for (int i = 0; i < 4; ++i) {
        poll(*main_reader_, main_, SIZE_MAX);
        if (resumer_reader_) poll(*resumer_reader_, resumer_, SIZE_MAX);
      }
      const auto last = make_payload(rng_, writer_id(k), ++wseq_[k], 0, sizeof(Stamp));
      EXPECT_EQ(producers_[k]->try_write(1, last), WriteStatus::kOk);
    }
    for (auto& p : producers_) p.reset();  // publishes what was pending
    for (int i = 0; i < 4; ++i) {
      poll(*main_reader_, main_, SIZE_MAX);
      if (resumer_reader_) poll(*resumer_reader_, resumer_, SIZE_MAX);
      poll(*tail_reader_, tail_, SIZE_MAX);
    }
    const RingStats st = ring_->stats();
    std::uint64_t published = 0;
    for (const LaneStats& l : st.lane) published += l.records;
    for (const ReaderStats& r : st.readers) {
      EXPECT_EQ(r.records + r.lapped_records, published)
          << r.name << ": read " << r.records << " + lapped " << r.lapped_records << " != published " << published
          << " (corrupt " << r.corrupt_records << ", torn " << r.torn_records << ")";
      EXPECT_EQ(r.lag_bytes, 0u) << r.name;
      if (r.name == "main") {
        EXPECT_EQ(r.records, main_.delivered) << "the slot's count and the deliveries agree";
        EXPECT_EQ(r.corrupt_records, 0u) << "no corruption was injected";
        if (policy_ != Overflow::kOverwrite) {
          EXPECT_EQ(r.lapped_records, 0u) << "a live gating reader is never lapped";
        }
      }
    }
    if (policy_ != Overflow::kOverwrite) {
      // Under block/drop the gating reader got exactly what was committed.
      EXPECT_EQ(main_.delivered, published);
    }
    for (const Seen* s : {&main_, &resumer_, &tail_}) {
      for (const std::string& e : s->errors) ADD_FAILURE() << e;
    }
  }

  [[nodiscard]] bool failed() const {
    return !main_.errors.empty() || !resumer_.errors.empty() || !tail_.errors.empty();
  }

 private:
  void attach_producer(std::uint32_t k) {
    auto p = Producer::attach(*ring_);
    ASSERT_TRUE(p) << p.error().message();
    producers_[k].emplace(std::move(*p));
  }
  void attach_resumer() {
    auto r = Reader::attach(*ring_, "resumer");
    ASSERT_TRUE(r) << r.error().message();
    resumer_reader_.emplace(std::move(*r));
  }
  std::uint64_t next_seq_of(const Producer& p) { return ring_->stats().lane[p.lane()].next_seq; }
  std::size_t random_size() {
    const unsigned r = static_cast<unsigned>(rng_() % 10);
    if (r < 6) return sizeof(Stamp) + rng_() % 64;
    return sizeof(Stamp) + rng_() % (kMaxRecord - sizeof(Stamp) + 1);
  }

  void write_one(std::uint32_t k) {
    Producer& p = *producers_[k];
    const auto payload = make_payload(rng_, writer_id(k), ++wseq_[k], next_seq_of(p), random_size());
    const WriteStatus st = p.try_write(1, payload);
    if (st != WriteStatus::kOk) --wseq_[k];  // refused: that writer seq is reused
  }
  void write_batch(std::uint32_t k) {
    Producer& p = *producers_[k];
    const int n = 1 + static_cast<int>(rng_() % 6);
    const std::uint64_t next = next_seq_of(p);
    for (int i = 0; i < n; ++i) {
      const auto payload =
          make_payload(rng_, writer_id(k), ++wseq_[k], next + static_cast<std::uint64_t>(i) + 1, random_size());
      if (p.try_append(1, payload) != WriteStatus::kOk) {
        --wseq_[k];
        p.count_dropped(1);
        break;
      }
    }
    p.publish();
  }
  void abandon_claim(std::uint32_t k) {
    Producer& p = *producers_[k];
    auto span = p.try_claim(random_size());
    // Fill it with what looks like the next records, then walk away.
    for (std::size_t i = 0; i + 8 <= span.size(); i += 8) {
      const std::uint64_t w = next_seq_of(p) + rng_() % 8;
      std::memcpy(span.data() + i, &w, 8);
    }
  }
  std::uint32_t writer_id(std::uint32_t k) const { return k * 1000 + generation_[k]; }

  // A child takes lane k's place, writes, and dies at a random step of a
  // write (mid-claim, mid-payload, after finish, after commit, ...).
  void forked_producer_dies(std::uint32_t k) {
    producers_[k].reset();
    ++generation_[k];
    const std::uint32_t writer = writer_id(k);
    const int countdown = 1 + static_cast<int>(rng_() % 40);
    const std::uint64_t seed = rng_();
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      std::mt19937_64 crng(seed);
      auto p = Producer::attach(*ring_);
      if (!p) ::_exit(2);
      g_countdown.store(countdown);
      set_fault_hook(&die_at_countdown);
      const std::uint64_t base = ring_->stats().lane[p->lane()].next_seq;
      for (std::uint64_t w = 1; w < 2'000; ++w) {  // bounded: a full lane never reaches a fault point
        const std::uint64_t next = base + w;
        const auto payload = make_payload(crng, writer, w, next, sizeof(Stamp) + crng() % 200);
        if (crng() % 2) {
          (void)p->try_write(1, payload);
        } else {
          (void)p->try_append(1, payload);
          if (crng() % 3 == 0) p->publish();
        }
      }
      ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    ++generation_[k];
    wseq_[k] = 0;
    attach_producer(k);  // takeover: adopts what the child committed, writes over the rest
  }

  // A child resumes the durable reader, reads a little and dies without
  // detaching; the parent resumes it again later.
  void forked_reader_dies() {
    resumer_reader_.reset();
    const std::size_t max = 1 + rng_() % 8;
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto r = Reader::attach(*ring_, "resumer");
      if (!r) ::_exit(2);
      r->poll([](const RecordView&) {}, max);
      ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    // Its deliveries happened in the child: the parent's view restarts.
    resumer_ = Seen{};
    resumer_.name = "resumer";
    attach_resumer();
  }

  void poll(Reader& r, Seen& s, std::size_t max) {
    std::uint64_t next[kLanes];
    const RingStats st = ring_->stats();
    for (std::uint32_t l = 0; l < kLanes; ++l) next[l] = st.lane[l].next_seq;
    r.poll([&](const RecordView& v) { s.take(v, next); }, max);
  }

  void check_running_totals() {
    const RingStats st = ring_->stats();
    std::uint64_t published = 0;
    for (const LaneStats& l : st.lane) published += l.records;
    for (const ReaderStats& r : st.readers) {
      if (r.name != "main") continue;
      EXPECT_LE(r.records + r.lapped_records, published) << "read more than was published";
    }
  }

  Overflow policy_;
  std::mt19937_64 rng_;
  std::optional<Ring> ring_;
  std::optional<Producer> producers_[kLanes];
  std::uint64_t wseq_[kLanes] = {0, 0};
  std::uint32_t generation_[kLanes] = {0, 0};
  std::optional<Reader> main_reader_, resumer_reader_, tail_reader_;
  Seen main_, resumer_, tail_;
};

void run_model(Overflow policy) {
  const int soak = soak_seconds();
  const auto budget = std::chrono::seconds(soak ? soak : 2);
  const auto start = std::chrono::steady_clock::now();
  const std::uint64_t seed0 = first_seed();
  std::uint64_t seed = seed0;
  std::uint64_t steps = 0;
  for (; std::chrono::steady_clock::now() - start < budget; ++seed) {
    ScratchDir dir;
    Model m(policy, seed, dir.file("ring"));
    for (int i = 0; i < 3000; ++i, ++steps) {
      m.step();
      if (m.failed() || ::testing::Test::HasFailure()) break;
    }
    m.finish();
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "policy " << overflow_name(policy) << ", seed " << seed
                    << " (replay: RINGPIPE_MODEL_SEED=" << seed << ")";
      return;
    }
  }
  std::printf("%s: %llu seeds, %llu steps\n", std::string(overflow_name(policy)).c_str(),
              static_cast<unsigned long long>(seed - seed0), static_cast<unsigned long long>(steps));
}

TEST(RingModel, BlockKeepsEveryPromiseUnderRandomWritesKillsAndRestarts) { run_model(Overflow::kBlock); }
TEST(RingModel, DropKeepsEveryPromiseUnderRandomWritesKillsAndRestarts) { run_model(Overflow::kDrop); }
TEST(RingModel, OverwriteKeepsEveryPromiseUnderRandomWritesKillsAndRestarts) { run_model(Overflow::kOverwrite); }

}  // namespace
}  // namespace ringpipe::ring
