#include "record_print.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>

#include <fmt/format.h>

#include "ringpipe/common/log.hpp"
#include "ringpipe/metric/metric_record.hpp"
#include "ringpipe/sample/sample_batch.hpp"

namespace ringpipe::apps {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_stop_signal(int) { g_stop.store(true, std::memory_order_relaxed); }

void format_samples(std::span<const std::byte> payload, std::string& out) {
  sample::BatchReader r(payload);
  const sample::BatchHeader& h = r.header();
  out += fmt::format(" sample batch: {} samples, source {}\n", h.sample_count, h.source_id);
  while (auto s = r.next()) {
    out += fmt::format("  {} {}", sample::kind_name(s->kind), s->name);
    if (s->kind == sample::Kind::kSet)
      out += fmt::format(" {:?}", s->str_value);
    else
      out += fmt::format(" {}", s->value);
    if (s->sample_rate != 1.0) out += fmt::format(" @{}", s->sample_rate);
    if (s->tag_count > 0) {
      out += " {";
      bool first = true;
      s->for_each_tag([&](const sample::Tag& t) {
        out += fmt::format("{}{}={}", first ? "" : ",", t.key, t.value);
        first = false;
      });
      out += "}";
    }
    if (s->timestamp_ns != 0) out += fmt::format(" ts={}", s->timestamp_ns);
    out += "\n";
  }
  if (r.error() != sample::DecodeError::kNone)
    out += fmt::format("  malformed: {}\n", sample::decode_error_name(r.error()));
}

void format_metrics(std::span<const std::byte> payload, std::string& out) {
  metric::MetricBatchReader r(payload);
  const metric::MetricBatchHeader& h = r.header();
  out += fmt::format(" metric batch: {} entries, shard {}/{}, instance {:016x}, flush {}\n", h.entry_count, h.shard,
                     h.shard_count, h.instance_id, h.flush_seq);
  while (auto e = r.next()) {
    if (e->kind == metric::EntryKind::kSnapshotBegin || e->kind == metric::EntryKind::kSnapshotEnd) {
      out += fmt::format("  {} {}\n", metric::entry_kind_name(e->kind), e->key);
      continue;
    }
    std::string labels;
    e->for_each_label([&](const metric::Label& l) {
      labels += fmt::format("{}{}={:?}", labels.empty() ? "" : ",", l.name, l.value);
    });
    const std::string series = labels.empty() ? std::string(e->name) : fmt::format("{}{{{}}}", e->name, labels);
    if (e->kind == metric::EntryKind::kExpire) {
      out += fmt::format("  expire {}\n", series);
      continue;
    }
    out += fmt::format("  {} {}", metric::metric_type_name(e->type), series);
    for (std::uint16_t i = 0; i < e->value_count; ++i) out += fmt::format(" {}", e->value(i));
    out += "\n";
  }
  if (r.error() != metric::MetricDecodeError::kNone)
    out += fmt::format("  malformed: {}\n", metric::metric_decode_error_name(r.error()));
}

void format_hex(std::span<const std::byte> payload, std::string& out) {
  constexpr std::size_t kMaxBytes = 256;
  out += fmt::format(" type unknown, {} bytes\n", payload.size());
  const std::size_t n = std::min(payload.size(), kMaxBytes);
  for (std::size_t i = 0; i < n; i += 16) {
    out += fmt::format("  {:04x}:", i);
    for (std::size_t j = i; j < std::min(n, i + 16); ++j)
      out += fmt::format(" {:02x}", static_cast<unsigned>(payload[j]));
    out += "\n";
  }
  if (n < payload.size()) out += fmt::format("  ... {} more bytes\n", payload.size() - n);
}

}  // namespace

void format_record(const ring::RecordView& v, std::string& out) {
  out += fmt::format("lane {} seq {} type {}", v.lane, v.seq, v.type);
  switch (v.type) {
    case sample::kSampleBatchRecord:
      format_samples(v.payload, out);
      break;
    case metric::kMetricBatchRecord:
      format_metrics(v.payload, out);
      break;
    default:
      format_hex(v.payload, out);
      break;
  }
}

bool tail_option(ArgScanner& args, TailOptions& options, std::string* error) {
  std::string value;
  if (args.option("--from", &value)) {
    if (value == "latest")
      options.start = ring::StartAt::kLatest;
    else if (value == "oldest")
      options.start = ring::StartAt::kOldest;
    else
      *error = "--from: found \"" + value + "\", expected latest or oldest";
    return true;
  }
  if (args.option("--count", &value)) {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || end != value.data() + value.size())
      *error = "--count: found \"" + value + "\", expected a number";
    else
      options.count = n;
    return true;
  }
  if (args.option("--duration", &value)) {
    if (auto d = duration_option("--duration", value, error)) options.duration = *d;
    return true;
  }
  if (!args.error().empty()) *error = args.error();
  return false;
}

int tail_ring(const std::string& path, const TailOptions& options, std::FILE* out) {
  auto ring = ring::Ring::open(path);
  if (!ring) {
    std::fprintf(stderr, "ringpipe tail: %s\n", ring.error().message().c_str());
    return 1;
  }
  const std::string name = "tail-" + std::to_string(::getpid());
  ring::ReaderOptions ro;
  ro.start = options.start;
  ro.durable = false;
  auto reader = ring::Reader::attach(*ring, name, ro);
  if (!reader) {
    std::fprintf(stderr, "ringpipe tail: %s\n", reader.error().message().c_str());
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  std::fprintf(stderr, "tailing %s as reader %s\n", path.c_str(), name.c_str());

  const std::int64_t deadline =
      options.duration ? monotonic_ns() + std::chrono::nanoseconds(*options.duration).count() : INT64_MAX;
  std::uint64_t seen = 0;
  std::string text;
  // Records the reader skipped (damaged) or lost to producers that lapped
  // it: said on stderr as it happens, never skipped silently.
  std::uint64_t corrupt = 0, lapped = 0;
  auto report_skips = [&] {
    const ring::ReaderStats st = reader->stats();
    if (st.corrupt_records > corrupt) {
      std::fprintf(stderr, "ringpipe tail: skipped %llu corrupt record(s) (%llu in all)\n",
                   static_cast<unsigned long long>(st.corrupt_records - corrupt),
                   static_cast<unsigned long long>(st.corrupt_records));
      corrupt = st.corrupt_records;
    }
    if (st.lapped_records > lapped) {
      std::fprintf(stderr, "ringpipe tail: lost %llu record(s) to producers that lapped this reader\n",
                   static_cast<unsigned long long>(st.lapped_records - lapped));
      lapped = st.lapped_records;
    }
  };
  while (!g_stop.load(std::memory_order_relaxed) && monotonic_ns() < deadline &&
         (!options.count || seen < *options.count)) {
    const std::size_t max = options.count ? static_cast<std::size_t>(*options.count - seen) : SIZE_MAX;
    const std::size_t n = reader->poll(
        [&](const ring::RecordView& v) {
          text.clear();
          format_record(v, text);
          std::fwrite(text.data(), 1, text.size(), out);
        },
        max);
    seen += n;
    report_skips();
    if (n > 0)
      std::fflush(out);
    else
      (void)reader->wait(std::chrono::milliseconds(100));
  }
  std::fflush(out);
  report_skips();
  return 0;
}

}  // namespace ringpipe::apps
