// ingest_bench: how fast ingest parses and receives.
//   1. Parser throughput on one core, per protocol (and the Prometheus text
//      format parser of prometheus_scrape), beside two baselines over the same
//      bytes: memchr line splitting (the floor any line parser pays) and memcpy.
//   2. UDP -> ring load test: a sendmmsg generator (N series, L lines per
//      packet, target rate, bounded duration) into IngestServer writing a real
//      ring, drained by a reader thread; reports received/sent, every drop
//      counter and the server's CPU per million lines.
//   3. --send-only: the same generator alone, aimed at any UDP port (another
//      StatsD server: a running ringpipe, collectd, statsd_exporter). Prints
//      the lines it sent; used by bench/e2e.
// Usage: ingest_bench [--parse-only|--udp-only] [--seconds S] [--rate LINES_PER_S]
//                     [--series N] [--lines L] [--sockets K] [--ring-dir DIR]
//                     [--protocol statsd|influx|graphite|json|prom_text]
//        ingest_bench --send-only --port P [--host 127.0.0.1] [--seconds S]
//                     [--rate LINES_PER_S, 0 = as fast as possible] [--series N]
//                     [--lines L] [--prefix NAME] [--tags TAGS] [--series-tag KEY]

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "ringpipe/common/log.hpp"
#include "ringpipe/ingest/ingest_server.hpp"
#include "ringpipe/ingest/line_parser.hpp"
#include "ringpipe/ingest/prom_text_parser.hpp"
#include "ringpipe/ingest/ring_target.hpp"
#include "ringpipe/ring/ring.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace {

using namespace ringpipe;
using Clock = std::chrono::steady_clock;

struct Args {
  bool parse = true;
  bool udp = true;
  double seconds = 3;
  double rate = 2e6;  // lines per second
  int series = 10000;
  int lines = 20;
  std::uint32_t sockets = 2;
  std::string ring_dir = "/dev/shm";
  std::string protocol;  // empty: all
  // --send-only: the generator alone, to host:port.
  bool send_only = false;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string prefix = "bench.metric";  // counter names are <prefix>.<series id>
  std::string tags = "env:bench";       // DogStatsD tags; "" sends plain StatsD
  // --series-tag KEY: every line has the one name <prefix> and the series id
  // goes into the DogStatsD tag KEY:<id> (series by tag value, not by name).
  std::string series_tag;
};

using bench::thread_cpu_seconds;

double process_cpu_s() { return bench::process_usage().cpu_s; }

// About `bytes` of realistic traffic for a protocol, one line per series step.
std::string make_traffic(ingest::Protocol p, std::size_t bytes, int series) {
  std::string s;
  s.reserve(bytes + 256);
  char line[256];
  for (std::uint64_t i = 0; s.size() < bytes; ++i) {
    const int id = static_cast<int>(i % static_cast<std::uint64_t>(series));
    int n = 0;
    switch (p) {
      case ingest::Protocol::kStatsd:
        switch (i % 4) {
          case 0:
            n = std::snprintf(line, sizeof line, "app.requests.%d:1|c|#env:prod,host:web%d\n", id, id % 32);
            break;
          case 1:
            n = std::snprintf(line, sizeof line, "app.latency.%d:%d.%d|ms|@0.5|#env:prod\n", id, id % 500, id % 10);
            break;
          case 2:
            n = std::snprintf(line, sizeof line, "app.queue.%d:%d|g\n", id, id % 1000);
            break;
          default:
            n = std::snprintf(line, sizeof line, "app.bytes.%d:%d|h|#route:/api/v%d\n", id, id * 7, id % 3);
            break;
        }
        break;
      case ingest::Protocol::kInflux:
        n = std::snprintf(line, sizeof line,
                          "cpu,host=web%d,region=eu-%d usage_user=%d.%d,usage_system=%di 17000000000%08d\n", id % 32,
                          id % 4, id % 100, id % 10, id % 50, id);
        break;
      case ingest::Protocol::kGraphite:
        n = std::snprintf(line, sizeof line, "servers.web%d.cpu.%d;env=prod %d.%d 17000%05d\n", id % 32, id, id % 100,
                          id % 10, id % 100000);
        break;
      case ingest::Protocol::kJson:
        n = std::snprintf(line, sizeof line,
                          "{\"name\":\"room_temperature\",\"value\":%d.%d,\"site\":\"lab%d\",\"device\":\"s%d\","
                          "\"floor\":%d,\"ok\":true}\n",
                          id % 40, id % 10, id % 4, id, id % 8);
        break;
    }
    s.append(line, static_cast<std::size_t>(n));
  }
  return s;
}

// About `bytes` of a scrape body like node_exporter's: a # HELP/# TYPE pair per
// family of ten series, counters with two labels, histogram buckets.
std::string make_prom_text(std::size_t bytes, int series) {
  std::string s;
  s.reserve(bytes + 512);
  char line[256];
  for (std::uint64_t i = 0; s.size() < bytes; ++i) {
    const int id = static_cast<int>(i % static_cast<std::uint64_t>(series));
    int n = 0;
    if (i % 10 == 0) {
      n = std::snprintf(line, sizeof line,
                        "# HELP family_%d_total Seconds the CPUs spent in each mode.\n"
                        "# TYPE family_%d_total counter\n",
                        id, id);
      s.append(line, static_cast<std::size_t>(n));
    }
    if (i % 2 == 0) {
      n = std::snprintf(line, sizeof line, "node_cpu_seconds_total{cpu=\"%d\",mode=\"idle\"} %d.%02d\n", id, id * 13,
                        id % 100);
    } else {
      n = std::snprintf(line, sizeof line,
                        "http_request_duration_seconds_bucket{handler=\"/api/v%d\",le=\"0.%d\"} %d\n", id, id % 10,
                        id * 7);
    }
    s.append(line, static_cast<std::size_t>(n));
  }
  return s;
}

// A batch that is simply restarted when full: measures parsing + encoding only.
struct Sink {
  std::vector<std::byte> buf = std::vector<std::byte>(256 * 1024);
  sample::BatchWriter writer{buf, 1, 0};
  ingest::SampleOutput out{&writer, &Sink::rotate, this};
  static bool rotate(void* self) noexcept {
    auto* s = static_cast<Sink*>(self);
    (void)s->writer.finish();
    s->writer.reset(s->buf, 0);
    return true;
  }
};

struct Row {
  std::string what;
  double lines_per_s;
  double mb_per_s;
  double ns_per_line;
  double samples_per_line;
};

using bench::time_repeated;

void print_row(const Row& r) {
  std::printf("  %-34s %10.2f M/s %9.0f MB/s %8.1f ns %8.2f\n", r.what.c_str(), r.lines_per_s / 1e6, r.mb_per_s,
              r.ns_per_line, r.samples_per_line);
}

// The two baselines and `parse` over the same bytes, one row each.
template <class Parse>
void bench_one(const std::string& name, const std::string& buf, double min_s, Parse&& parse) {
  const double nlines = static_cast<double>(std::count(buf.begin(), buf.end(), '\n'));
  const double mb = static_cast<double>(buf.size()) / 1e6;
  int reps = 0;
  // Baseline 1: memchr line splitting over the same bytes.
  volatile std::size_t sink = 0;
  double t = time_repeated(
      min_s,
      [&] {
        const char* q = buf.data();
        const char* end = q + buf.size();
        std::size_t n = 0;
        while (const void* nl = std::memchr(q, '\n', static_cast<std::size_t>(end - q))) {
          q = static_cast<const char*>(nl) + 1;
          ++n;
        }
        sink = sink + n;
      },
      reps);
  print_row({name + " baseline: memchr split", nlines * reps / t, mb * reps / t, t * 1e9 / (nlines * reps), 0});
  // Baseline 2: memcpy of the same bytes.
  std::string copy(buf.size(), '\0');
  t = time_repeated(
      min_s,
      [&] {
        std::memcpy(copy.data(), buf.data(), buf.size());
        sink = sink + static_cast<unsigned char>(copy[reps % copy.size()]);
      },
      reps);
  print_row({name + " baseline: memcpy", nlines * reps / t, mb * reps / t, t * 1e9 / (nlines * reps), 0});
  // The parser, writing real sample batches.
  Sink out;
  ingest::ParseCounters c;
  t = time_repeated(
      min_s, [&] { parse(buf, out.out, c); }, reps);
  // Per line of the input (comment lines included); samples/line counts data lines.
  print_row({name + " parser -> BatchWriter", nlines * reps / t, mb * reps / t, t * 1e9 / (nlines * reps),
             static_cast<double>(c.samples) / static_cast<double>(c.lines)});
  std::printf("  %-34s %10.2f M samples/s\n", "", static_cast<double>(c.samples) / t / 1e6);
  if (c.total_errors() != 0)
    std::printf("  (unexpected: %llu parse errors)\n", static_cast<unsigned long long>(c.total_errors()));
}

void bench_parsers(const Args& a) {
  std::printf(
      "\nParser throughput per core: per CPU-second of the parsing thread (8 MiB buffer of generated lines, %d "
      "series)\n",
      a.series);
  std::printf("  %-34s %14s %14s %11s %8s\n", "", "lines", "bytes", "per line", "samples/line");
  const double min_s = std::max(0.5, a.seconds / 4);
  for (const ingest::Protocol p :
       {ingest::Protocol::kStatsd, ingest::Protocol::kInflux, ingest::Protocol::kGraphite, ingest::Protocol::kJson}) {
    if (!a.protocol.empty() && a.protocol != ingest::protocol_name(p)) continue;
    ingest::ParserOptions po;
    po.protocol = p;
    ingest::LineParser parser(po);
    bench_one(std::string(ingest::protocol_name(p)), make_traffic(p, 8u << 20, a.series), min_s,
              [&](const std::string& buf, ingest::SampleOutput& out, ingest::ParseCounters& c) {
                parser.parse_packet(buf, out, c);
              });
  }
  if (a.protocol.empty() || a.protocol == "prom_text") {
    ingest::PromTextOptions po;
    const std::string instance = "127.0.0.1:9100";
    po.target_labels = {{"instance", instance}, {"job", "node"}};
    ingest::PromTextParser parser(po);
    bench_one("prom_text", make_prom_text(8u << 20, a.series), min_s,
              [&](const std::string& buf, ingest::SampleOutput& out, ingest::ParseCounters& c) {
                parser.parse(buf, ingest::PromFormat::kText, out, c);
              });
  }
}

// Pre-built packets: every series appears, lines vary only by series.
std::vector<std::string> build_packets(const Args& a) {
  const int packets_needed = (a.series + a.lines - 1) / a.lines;
  std::vector<std::string> packets;
  packets.reserve(static_cast<std::size_t>(std::max(packets_needed, 64)));
  const std::string suffix = a.tags.empty() ? std::string(":1|c\n") : ":1|c|#" + a.tags + "\n";
  const std::string tagged = ":1|c|#" + (a.tags.empty() ? std::string() : a.tags + ",") + a.series_tag + ":";
  for (int p = 0; p < std::max(packets_needed, 64); ++p) {
    std::string s;
    for (int l = 0; l < a.lines; ++l) {
      const int id = (p * a.lines + l) % a.series;
      if (a.series_tag.empty()) {
        s += a.prefix + "." + std::to_string(id) + suffix;
      } else {
        s += a.prefix + tagged + std::to_string(id) + "\n";
      }
    }
    packets.push_back(std::move(s));
  }
  return packets;
}

struct SendResult {
  std::uint64_t lines = 0;
  std::uint64_t packets = 0;
  std::uint64_t errors = 0;
  double seconds = 0;
  double cpu_s = 0;  // the sending thread's CPU
};

// sendmmsg in batches of 32 to addr:port (network byte order), paced so it is
// never ahead of rate * elapsed (rate <= 0: as fast as possible), for a.seconds.
SendResult send_packets(const Args& a, std::uint32_t addr_be, std::uint16_t port,
                        const std::vector<std::string>& packets) {
  SendResult r;
  const double cpu0 = thread_cpu_seconds();
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    std::perror("socket");
    return r;
  }
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  dst.sin_addr.s_addr = addr_be;
  constexpr int kBatch = 32;
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(a.seconds);
  std::size_t next_packet = 0;
  for (auto now = start; now < end; now = Clock::now()) {
    if (a.rate > 0) {
      const double elapsed = std::chrono::duration<double>(now - start).count();
      const double allowed = a.rate * elapsed - static_cast<double>(r.lines);
      if (allowed < a.lines * kBatch) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        continue;
      }
    }
    for (int i = 0; i < kBatch; ++i) {
      const std::string& p = packets[(next_packet + static_cast<std::size_t>(i)) % packets.size()];
      iov[i] = iovec{const_cast<char*>(p.data()), p.size()};
      std::memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_name = &dst;
      msgs[i].msg_hdr.msg_namelen = sizeof dst;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = ::sendmmsg(fd, msgs, kBatch, 0);
    if (n > 0) {
      // Only the packets actually handed to the kernel count as sent.
      next_packet += static_cast<std::size_t>(n);
      r.packets += static_cast<std::uint64_t>(n);
      r.lines += static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(a.lines);
    } else {
      ++r.errors;
    }
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  ::close(fd);
  r.cpu_s = thread_cpu_seconds() - cpu0;
  return r;
}

// --send-only: the generator alone. The last line is machine-readable.
int send_only(const Args& a) {
  in_addr addr{};
  if (a.port <= 0 || a.port > 65535 || ::inet_pton(AF_INET, a.host.c_str(), &addr) != 1) {
    std::fprintf(stderr, "--send-only needs --port 1..65535 and an IPv4 --host (found %s:%d)\n", a.host.c_str(),
                 a.port);
    return 2;
  }
  const std::vector<std::string> packets = build_packets(a);
  std::fprintf(stderr, "sending to %s:%d: %d series, %d lines/packet, %s for %.1f s\n", a.host.c_str(), a.port,
               a.series, a.lines,
               a.rate > 0 ? (std::to_string(a.rate / 1e6) + " M lines/s").c_str() : "as fast as possible", a.seconds);
  const SendResult r = send_packets(a, addr.s_addr, static_cast<std::uint16_t>(a.port), packets);
  std::printf("sent_lines=%llu sent_packets=%llu send_errors=%llu seconds=%.3f rate=%.0f generator_cpu_s=%.3f\n",
              static_cast<unsigned long long>(r.lines), static_cast<unsigned long long>(r.packets),
              static_cast<unsigned long long>(r.errors), r.seconds,
              r.seconds > 0 ? static_cast<double>(r.lines) / r.seconds : 0.0, r.cpu_s);
  return r.lines > 0 ? 0 : 1;
}

// The UDP -> ring load test.
int bench_udp(const Args& a) {
  std::printf("\nUDP -> ring: %u SO_REUSEPORT sockets, %d series, %d lines/packet, target %.2f M lines/s for %.1f s\n",
              a.sockets, a.series, a.lines, a.rate / 1e6, a.seconds);
  const std::string ring_path = a.ring_dir + "/ringpipe-ingest-bench-" + std::to_string(::getpid()) + ".ring";
  ring::RingOptions ro;
  ro.lane_capacity_bytes = 16u << 20;
  ro.lanes = a.sockets + 1;
  ro.overflow = ring::Overflow::kDrop;  // a slow reader shows up as counted drops, not as back-pressure
  auto ring = ring::Ring::create(ring_path, ro);
  if (!ring) {
    std::fprintf(stderr, "ring: %s\n", ring.error().message().c_str());
    return 1;
  }
  struct Cleanup {
    std::string p;
    ~Cleanup() { std::filesystem::remove(p); }
  } cleanup{ring_path};

  std::atomic<bool> stop_reader{false};
  std::atomic<std::uint64_t> ring_samples{0};
  double reader_cpu = 0;
  auto reader = ring::Reader::attach(*ring, "bench");
  if (!reader) {
    std::fprintf(stderr, "reader: %s\n", reader.error().message().c_str());
    return 1;
  }
  std::thread reader_thread([&] {
    auto quiet = Clock::now();
    while (true) {
      const std::size_t n = reader->poll([&](const ring::RecordView& v) {
        sample::BatchReader br(v.payload);
        ring_samples.fetch_add(br.header().sample_count, std::memory_order_relaxed);
      });
      if (n > 0) quiet = Clock::now();
      if (stop_reader.load() && Clock::now() - quiet > std::chrono::milliseconds(200)) break;
      if (n == 0) (void)reader->wait(std::chrono::milliseconds(1));
    }
    reader_cpu = thread_cpu_seconds();
  });

  ingest::IngestConfig cfg;
  cfg.name = "bench";
  cfg.udp = ingest::UdpConfig{.port = 0, .sockets = a.sockets, .receive_buffer_bytes = 32u << 20, .batch_packets = 64};
  auto server = ingest::IngestServer::create(
      cfg, ingest::ring_target_factory(*ring, {.claim_bytes = 256 * 1024, .claim_timeout = {}}));
  if (!server) {
    std::fprintf(stderr, "server: %s\n", server.error().message().c_str());
    return 1;
  }
  if (!(*server)->start()) return 1;
  const std::uint16_t port = (*server)->udp_port();

  const std::vector<std::string> packets = build_packets(a);
  const double cpu0 = process_cpu_s();
  SendResult sr;
  std::thread gen([&] { sr = send_packets(a, htonl(INADDR_LOOPBACK), port, packets); });
  gen.join();
  const std::uint64_t sent_lines = sr.lines;
  const std::uint64_t send_errors = sr.errors;
  const double gen_cpu = sr.cpu_s;
  const auto& st = (*server)->stats();
  // Let the server catch up with what the kernel holds (bounded).
  const auto settle_end = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < settle_end &&
         st.lines.load() + st.udp_kernel_drops_total() * static_cast<std::uint64_t>(a.lines) < sent_lines) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  (*server)->stop();
  stop_reader = true;
  reader_thread.join();
  const double cpu_total = process_cpu_s() - cpu0;
  const double server_cpu = std::max(0.0, cpu_total - gen_cpu - reader_cpu);

  const double received = static_cast<double>(st.lines.load());
  std::printf("  sent lines            %12llu  (%.2f M/s achieved, %llu sendmmsg errors)\n",
              static_cast<unsigned long long>(sent_lines), static_cast<double>(sent_lines) / a.seconds / 1e6,
              static_cast<unsigned long long>(send_errors));
  std::printf("  received lines        %12.0f  (%.4f of sent)\n", received, received / static_cast<double>(sent_lines));
  std::printf("  samples in ring       %12llu  (read back by the reader)\n",
              static_cast<unsigned long long>(ring_samples.load()));
  std::printf("  kernel drops          %12llu  packets (SO_RXQ_OVFL)\n",
              static_cast<unsigned long long>(st.udp_kernel_drops_total()));
  std::printf("  ring drops            %12llu  samples (%llu records)\n",
              static_cast<unsigned long long>(st.samples_dropped.load()),
              static_cast<unsigned long long>(st.records_dropped.load()));
  std::printf(
      "  parse errors          %12llu\n",
      static_cast<unsigned long long>(st.samples.load() >= st.lines.load() ? 0 : st.lines.load() - st.samples.load()));
  std::printf("  server CPU            %12.3f s  = %.3f CPU-s per million lines (generator %.3f s, reader %.3f s)\n",
              server_cpu, received > 0 ? server_cpu / (received / 1e6) : 0.0, gen_cpu, reader_cpu);
  std::printf("  baseline: generator   %12.3f CPU-s per million lines sent\n",
              sent_lines ? gen_cpu / (static_cast<double>(sent_lines) / 1e6) : 0.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string_view k = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : "0"; };
    if (k == "--parse-only")
      a.udp = false;
    else if (k == "--udp-only")
      a.parse = false;
    else if (k == "--seconds")
      a.seconds = std::atof(next());
    else if (k == "--rate")
      a.rate = std::atof(next());
    else if (k == "--series")
      a.series = std::max(1, std::atoi(next()));
    else if (k == "--lines")
      a.lines = std::max(1, std::atoi(next()));
    else if (k == "--sockets")
      a.sockets = static_cast<std::uint32_t>(std::clamp(std::atoi(next()), 1, 64));
    else if (k == "--ring-dir")
      a.ring_dir = next();
    else if (k == "--protocol")
      a.protocol = next();
    else if (k == "--send-only")
      a.send_only = true;
    else if (k == "--host")
      a.host = next();
    else if (k == "--port")
      a.port = std::atoi(next());
    else if (k == "--prefix")
      a.prefix = next();
    else if (k == "--tags")
      a.tags = i + 1 < argc ? argv[++i] : "";
    else if (k == "--series-tag")
      a.series_tag = next();
    else {
      std::fprintf(
          stderr,
          "usage: %s [--parse-only|--udp-only] [--seconds S] [--rate LINES_PER_S] [--series N] "
          "[--lines L] [--sockets K] [--ring-dir DIR] [--protocol statsd|influx|graphite|json|prom_text]\n"
          "       %s --send-only --port P [--host 127.0.0.1] [--seconds S] [--rate LINES_PER_S (0: "
          "unpaced)] [--series N] [--lines L] [--prefix NAME] [--tags TAGS ('' for plain StatsD)] [--series-tag KEY]\n",
          argv[0], argv[0]);
      return 2;
    }
  }
  a.seconds = std::clamp(a.seconds, 0.1, 600.0);
  spdlog::set_level(spdlog::level::warn);
  if (a.send_only) return send_only(a);
  if (a.parse) bench_parsers(a);
  if (a.udp && bench_udp(a) != 0) return 1;
  return 0;
}
