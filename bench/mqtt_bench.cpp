// mqtt_bench: MQTT messages through a real broker into a ring.
//   A Debian mosquitto broker on a free 127.0.0.1 port; one libmosquitto
//   publisher sends M messages ("sensors/<site>/<device>/temperature" with a
//   value payload, N devices) as fast as the broker takes them, QoS 0 or 1.
//   Receivers, measured one after the other on the same stream:
//     baseline: a bare libmosquitto subscriber that only counts messages
//               (the client library and broker cost, nothing of ours);
//     ringpipe: MqttSource with the topic template, parsing every payload
//               into sample batches in a real ring drained by a reader.
//   Prints messages/s received, the share of sent messages received, and the
//   bench process's CPU per million messages (publisher included in both
//   rows, so the difference is the receiver's; the broker is not counted).
// Usage: mqtt_bench [--messages M] [--devices N] [--qos 0|1] [--payload value|json|influx]

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <mosquitto.h>

#include "loopback.hpp"  // tests/support: header-only, no test framework
#include "ringpipe/common/log.hpp"
#include "ringpipe/ingest/mqtt_source.hpp"
#include "ringpipe/ingest/ring_target.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace {

using namespace ringpipe;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kMosquitto = "/usr/sbin/mosquitto";

struct Args {
  int messages = 200000;
  int devices = 1000;
  int qos = 0;
  std::string payload = "value";
};

double cpu_s(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string payload_for(const Args& a, int i) {
  const int site = i % 4;
  const int device = i % a.devices;
  const std::string v = std::to_string(20 + i % 15) + "." + std::to_string(i % 10);
  if (a.payload == "json") return "{\"value\":" + v + ",\"unit\":\"C\",\"ok\":true}";
  if (a.payload == "influx") return "temperature,room=r" + std::to_string(site) + " value=" + v;
  (void)device;
  return v;
}

std::string topic_for(const Args& a, int i) {
  return "sensors/site" + std::to_string(i % 4) + "/dev" + std::to_string(i % a.devices) + "/temperature";
}

// Publishes every message (QoS 1: waits for the acks) and returns the seconds taken.
double publish_all(const Args& a, std::uint16_t port) {
  mosquitto* m = mosquitto_new(nullptr, true, nullptr);
  std::atomic<int> acked{0};
  mosquitto_user_data_set(m, &acked);
  mosquitto_publish_callback_set(m, [](mosquitto*, void* u, int) { ++*static_cast<std::atomic<int>*>(u); });
  mosquitto_max_inflight_messages_set(m, 1000);
  if (mosquitto_connect(m, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS || mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS) {
    std::fprintf(stderr, "publisher cannot connect\n");
    std::exit(1);
  }
  const auto start = Clock::now();
  for (int i = 0; i < a.messages; ++i) {
    const std::string t = topic_for(a, i);
    const std::string p = payload_for(a, i);
    while (mosquitto_publish(m, nullptr, t.c_str(), static_cast<int>(p.size()), p.data(), a.qos, false) ==
           MOSQ_ERR_NOMEM) {
      std::this_thread::sleep_for(1ms);
    }
  }
  const auto deadline = Clock::now() + 60s;
  while (acked.load() < a.messages && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  mosquitto_disconnect(m);
  mosquitto_loop_stop(m, false);
  mosquitto_destroy(m);
  return s;
}

struct Measured {
  double seconds = 0;
  std::uint64_t received = 0;
  double cpu_s = 0;
};

// Waits until `received()` stops growing for 500 ms (or reaches `want`).
template <class F>
void wait_quiet(F&& received, std::uint64_t want) {
  std::uint64_t last = received();
  auto still_since = Clock::now();
  while (received() < want && Clock::now() - still_since < 500ms) {
    std::this_thread::sleep_for(5ms);
    const std::uint64_t now = received();
    if (now != last) {
      last = now;
      still_since = Clock::now();
    }
  }
}

Measured run_baseline(const Args& a, std::uint16_t port) {
  struct Count {
    std::atomic<std::uint64_t> n{0};
    std::atomic<bool> subscribed{false};
  } count;
  mosquitto* m = mosquitto_new(nullptr, true, &count);
  mosquitto_message_callback_set(m, [](mosquitto*, void* u, const mosquitto_message*) {
    static_cast<Count*>(u)->n.fetch_add(1, std::memory_order_relaxed);
  });
  mosquitto_subscribe_callback_set(
      m, [](mosquitto*, void* u, int, int, const int*) { static_cast<Count*>(u)->subscribed = true; });
  if (mosquitto_connect(m, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS) std::exit(1);
  mosquitto_subscribe(m, nullptr, "sensors/#", a.qos);
  std::atomic<bool> stop{false};
  std::thread loop([&] {
    while (!stop.load()) mosquitto_loop(m, 50, 1);
  });
  while (!count.subscribed.load()) std::this_thread::sleep_for(1ms);
  const auto start = Clock::now();
  const double cpu_start = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
  publish_all(a, port);
  wait_quiet([&] { return count.n.load(); }, static_cast<std::uint64_t>(a.messages));
  Measured r;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.received = count.n.load();
  r.cpu_s = cpu_s(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
  stop = true;
  loop.join();
  mosquitto_disconnect(m);
  mosquitto_destroy(m);
  return r;
}

Measured run_source(const Args& a, std::uint16_t port, const std::string& dir) {
  ring::RingOptions o;
  o.lane_capacity_bytes = 64u << 20;
  o.lanes = 2;
  auto ring = ring::Ring::create(dir + "/mqtt-bench.ring", o);
  if (!ring) {
    std::fprintf(stderr, "ring: %s\n", ring.error().message().c_str());
    std::exit(1);
  }
  auto reader = ring::Reader::attach(*ring, "bench");
  ingest::MqttConfig c;
  c.name = "bench";
  c.port = port;
  c.qos = a.qos;
  c.topics = {"sensors/#"};
  c.topic_template = "sensors/+site/+device/+name";
  c.payload = a.payload == "json"     ? ingest::MqttPayload::kJson
              : a.payload == "influx" ? ingest::MqttPayload::kInflux
                                      : ingest::MqttPayload::kValue;
  if (a.payload == "influx") c.parser.protocol = ingest::Protocol::kInflux;
  if (a.payload == "json") c.parser.protocol = ingest::Protocol::kJson;
  auto source = ingest::MqttSource::create(c, ingest::ring_target_factory(*ring));
  if (!source) {
    std::fprintf(stderr, "source: %s\n", source.error().message().c_str());
    std::exit(1);
  }
  std::atomic<std::uint64_t> samples{0};
  std::atomic<bool> stop{false};
  std::thread drain([&] {
    while (!stop.load()) {
      if (reader->poll([&](const ring::RecordView& v) {
            samples.fetch_add(sample::BatchReader(v.payload).header().sample_count, std::memory_order_relaxed);
          }) == 0) {
        std::this_thread::sleep_for(100us);
      }
    }
  });
  (void)(*source)->start();
  // Probe until subscribed: one message that the count then discounts.
  const auto probe_deadline = Clock::now() + 15s;
  while ((*source)->mqtt_stats().messages.load() == 0 && Clock::now() < probe_deadline) {
    Args one = a;
    one.messages = 1;
    publish_all(one, port);
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(50ms);
  const std::uint64_t probes = (*source)->mqtt_stats().messages.load();
  const auto start = Clock::now();
  const double cpu_start = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
  publish_all(a, port);
  wait_quiet([&] { return samples.load() - std::min<std::uint64_t>(samples.load(), probes); },
             static_cast<std::uint64_t>(a.messages));
  Measured r;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.received = samples.load() - probes;
  (*source)->stop();
  stop = true;
  drain.join();
  r.cpu_s = cpu_s(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
  std::uint64_t errors = 0;
  for (const auto& e : (*source)->stats().parse_errors) errors += e.load();
  if (errors != 0) std::printf("  (unexpected: %llu parse errors)\n", static_cast<unsigned long long>(errors));
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (k == "--messages" && v)
      a.messages = std::atoi(argv[++i]);
    else if (k == "--devices" && v)
      a.devices = std::atoi(argv[++i]);
    else if (k == "--qos" && v)
      a.qos = std::atoi(argv[++i]);
    else if (k == "--payload" && v)
      a.payload = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--messages M] [--devices N] [--qos 0|1] [--payload value|json|influx]\n",
                   argv[0]);
      return 2;
    }
  }
  if (::access(kMosquitto, X_OK) != 0) {
    std::fprintf(stderr, "needs %s (Debian package mosquitto)\n", kMosquitto);
    return 1;
  }
  init_logging("mqtt_bench", spdlog::level::warn);
  mosquitto_lib_init();
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("mqtt-bench-" + std::to_string(::getpid()))).string();
  std::filesystem::create_directories(dir);
  const std::uint16_t port = testing::free_tcp_port();
  std::ofstream(dir + "/mosquitto.conf") << "listener " << port
                                         << " 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"
                                         << "max_queued_messages 0\nmax_inflight_messages 0\n";
  const pid_t broker = ::fork();
  if (broker == 0) {
    ::execl(kMosquitto, kMosquitto, "-c", (dir + "/mosquitto.conf").c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 1000 && !testing::tcp_port_open(port); ++i) std::this_thread::sleep_for(10ms);

  std::printf("\nMQTT -> ring: %d messages, %d devices, QoS %d, %s payloads, one publisher, mosquitto on loopback\n",
              a.messages, a.devices, a.qos, a.payload.c_str());
  std::printf("  %-40s %12s %10s %16s\n", "receiver", "messages/s", "received", "CPU-s per M msgs");
  auto row = [&](const char* what, const Measured& r, const char* cpu_what) {
    std::printf("  %-40s %10.0f k %9.2f%% %12.2f (%s)\n", what, r.received / r.seconds / 1e3,
                100.0 * static_cast<double>(r.received) / a.messages, r.cpu_s / (static_cast<double>(r.received) / 1e6),
                cpu_what);
  };
  const Measured base = run_baseline(a, port);
  row("baseline: bare libmosquitto subscriber", base, "process, publisher included");
  const Measured ours = run_source(a, port, dir);
  row("ringpipe MqttSource -> ring", ours, "process, publisher included");

  ::kill(broker, SIGKILL);
  ::waitpid(broker, nullptr, 0);
  std::filesystem::remove_all(dir);
  return 0;
}
