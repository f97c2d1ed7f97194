// NameSet answers as a lookup in its names would, for every name: members,
// names sharing a member's first 8 bytes, names shorter than 8 bytes (zero
// padding must not make "ab" equal "ab\0"), the empty name, and a set with
// more distinct starts than it scans.
#include "name_set.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

using ringpipe::exporters::detail::NameSet;

void expect_same(const std::vector<std::string>& members, const std::vector<std::string>& probes) {
  const std::set<std::string> truth(members.begin(), members.end());
  const NameSet set(members);
  for (const std::string& p : probes) EXPECT_EQ(set.contains(p), truth.count(p) != 0) << "name '" << p << "'";
}

TEST(NameSet, AnswersAsTheSetDoesForMembersAndNeighbours) {
  const std::vector<std::string> members = {"ringpipe_exporter_series",
                                            "ringpipe_exporter_series_sum",
                                            "ringpipe_ring_lane_bytes_total",
                                            "up",
                                            "ab",
                                            "abcdefgh",
                                            "process_cpu_seconds_total",
                                            ""};
  std::vector<std::string> probes = members;
  for (const std::string& m : members) {
    probes.push_back(m + "x");
    probes.push_back(m + '\0');
    if (!m.empty()) {
      probes.push_back(m.substr(0, m.size() - 1));
      std::string changed = m;
      changed.back() = static_cast<char>(changed.back() + 1);
      probes.push_back(changed);
    }
  }
  for (const char* p : {"ringpipe", "ringpipe_", "ringpipf_exporter_series", "bench_metric_12", "u", "upp", "abcdefg",
                        "abcdefghi", "a", "b"}) {
    probes.emplace_back(p);
  }
  probes.push_back(std::string("ab\0\0\0\0\0\0", 8));  // starts as "ab" padded does
  expect_same(members, probes);
}

TEST(NameSet, AnswersAsTheSetDoesWithMoreStartsThanItScans) {
  std::mt19937 rng(7);
  std::vector<std::string> members;
  std::vector<std::string> probes;
  for (int i = 0; i < 200; ++i) {
    std::string name;
    const int len = 1 + static_cast<int>(rng() % 20);
    for (int c = 0; c < len; ++c) name.push_back(static_cast<char>('a' + rng() % 3));
    (i % 2 == 0 ? members : probes).push_back(name);
  }
  probes.insert(probes.end(), members.begin(), members.end());
  expect_same(members, probes);
  // The same names with one start shared by all: the scan rules names out.
  for (std::string& m : members) m = "ringpipe_" + m;
  for (std::string& p : probes) p = (p.size() % 2 == 0 ? "ringpipe_" : "ringpipx_") + p;
  expect_same(members, probes);
}

TEST(NameSet, OwnedByHoldsEachFamilysNameAndItsSumCountAndBucketSeries) {
  const std::vector<std::string> bases = {"ringpipe_exporter_series", "rpc_seconds"};
  const NameSet set = NameSet::owned_by(bases);
  for (const char* name : {"ringpipe_exporter_series", "ringpipe_exporter_series_sum", "ringpipe_exporter_series_count",
                           "ringpipe_exporter_series_bucket", "rpc_seconds", "rpc_seconds_sum", "rpc_seconds_count",
                           "rpc_seconds_bucket"}) {
    EXPECT_TRUE(set.contains(name)) << name;
  }
  for (const char* name : {"ringpipe_exporter_series_total", "rpc_seconds_created", "rpc_second", "_sum", ""}) {
    EXPECT_FALSE(set.contains(name)) << name;
  }
}

}  // namespace
