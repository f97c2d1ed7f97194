// The real `ringpipe run`: the supervisor's stats segment counts each
// component's restarts after a death, and the processor writes its own segment.

#include <gtest/gtest.h>
#include <signal.h>

#include <map>

#include "e2e_util.hpp"
#include "ringpipe/stats/stats_segment.hpp"
#include "status_file.hpp"

namespace ringpipe::apps {
namespace {

using namespace std::chrono_literals;

// name{label=value} -> value of every entry of a segment; empty while it cannot be read.
std::map<std::string, double> segment_values(const std::string& path) {
  std::map<std::string, double> out;
  auto reader = stats::StatsReader::open(path);
  if (!reader) return out;
  for (const stats::StatsEntry& e : reader->snapshot()) {
    std::string key = e.name;
    for (const stats::StatsLabel& l : e.labels) key += "{" + l.name + "=" + l.value + "}";
    out[key] = e.value();
  }
  return out;
}

TEST(SupervisorStatsE2e, CountsARestartAfterAKillInItsSegment) {
  testing::ScratchDir dir;
  const std::string file = dir.file("p.yaml");
  e2e::write_text(file, "pipeline: t\nrun_dir: " + dir.path().string() + R"(
rings: {raw: {size: 1MiB}, metrics: {size: 1MiB}}
sources: {src: {type: statsd, listen: [udp://127.0.0.1:0], output: raw}}
processors: {agg: {type: aggregate, input: raw, output: metrics, max_series: 1234}}
exporters: {prom: {type: prometheus, input: metrics, listen: 127.0.0.1:0}}
)");
  const std::string pipe_dir = dir.path().string() + "/t/";
  e2e::Proc run({"run", file}, dir.file("run.out"), dir.file("run.err"));
  const std::string sup = pipe_dir + "supervisor.stats";
  const std::string agg = pipe_dir + "agg.stats";
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto v = segment_values(agg);
        return segment_values(sup).size() == 3 && v.count("processor_max_series") == 1;
      },
      10s))
      << run.err();
  auto s = segment_values(sup);
  EXPECT_EQ(s["supervisor_component_restarts_total{child=agg}"], 0);
  EXPECT_EQ(s["supervisor_component_restarts_total{child=src}"], 0);
  EXPECT_EQ(s["supervisor_component_restarts_total{child=prom}"], 0);
  EXPECT_EQ(segment_values(agg)["processor_max_series"], 1234);
  auto info = stats::StatsReader::open(sup);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->info().kind, "supervisor");

  pid_t agg_pid = 0;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto st = read_status_file(status_file_path(dir.path().string(), "t"));
        if (!st) return false;
        for (const auto& c : st->components)
          if (c.name == "agg" && c.pid > 0) agg_pid = static_cast<pid_t>(c.pid);
        return agg_pid > 0;
      },
      10s));
  ASSERT_EQ(::kill(agg_pid, SIGKILL), 0);
  ASSERT_TRUE(testing::wait_until(
      [&] { return segment_values(sup)["supervisor_component_restarts_total{child=agg}"] == 1; }, 10s))
      << run.err();
  EXPECT_EQ(segment_values(sup)["supervisor_component_restarts_total{child=src}"], 0);

  run.signal(SIGTERM);
  EXPECT_EQ(run.wait(20s), std::optional<int>(0)) << run.err();
  // Stopping is not a restart.
  EXPECT_EQ(segment_values(sup)["supervisor_component_restarts_total{child=agg}"], 1);
}

}  // namespace
}  // namespace ringpipe::apps
