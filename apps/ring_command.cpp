// `ringpipe ring create|inspect|tail|rm-reader`: one ring file, no pipeline.

#include <charconv>
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "commands.hpp"
#include "components.hpp"
#include "record_print.hpp"
#include "ringpipe/ring/ring.hpp"

namespace ringpipe::apps {
namespace {

int usage(const std::string& message) {
  std::fprintf(stderr, "ringpipe ring: %s\n(see ringpipe ring --help)\n", message.c_str());
  return kExitUsage;
}

template <class T>
bool parse_number(const std::string& text, T* out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// Reader names are bytes from a shared file: print them so that no byte
// can act on the terminal (control bytes and non-ASCII as \xNN).
std::string printable(std::string_view bytes) {
  std::string out;
  for (const char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\') {
      out += c;
    } else {
      out += fmt::format("\\x{:02x}", u);
    }
  }
  return out;
}

std::string_view reader_state_name(ring::ReaderStats::State s) {
  switch (s) {
    case ring::ReaderStats::State::kFree:
      return "free";
    case ring::ReaderStats::State::kInit:
      return "init";
    case ring::ReaderStats::State::kActive:
      return "active";
    case ring::ReaderStats::State::kDead:
      return "dead";
  }
  return "unknown";
}

int create(Args args) {
  ArgScanner a(args);
  std::optional<std::string> path;
  std::uint64_t size = 64ull << 20;
  ring::RingOptions o;
  std::string v;
  while (!a.done()) {
    if (a.option("--size", &v)) {
      std::string why;
      auto s = size_option("--size", v, &why);
      if (!s) return usage(why);
      size = *s;
    } else if (a.option("--lanes", &v)) {
      if (!parse_number(v, &o.lanes)) return usage("--lanes: found \"" + v + "\", expected a number");
    } else if (a.option("--readers", &v)) {
      if (!parse_number(v, &o.max_readers)) return usage("--readers: found \"" + v + "\", expected a number");
    } else if (a.option("--overflow", &v)) {
      auto p = ring::parse_overflow(v);
      if (!p) return usage("--overflow: found \"" + v + "\", expected block, drop or overwrite");
      o.overflow = *p;
    } else if (a.option("--max-record", &v)) {
      std::string why;
      auto s = size_option("--max-record", v, &why);
      if (!s) return usage(why);
      if (*s > UINT32_MAX) return usage("--max-record: found \"" + v + "\", expected at most 4GiB - 1");
      o.max_record_bytes = static_cast<std::uint32_t>(*s);
    } else if (!a.error().empty()) {
      return usage(a.error());
    } else if (a.current().rfind("--", 0) == 0) {
      return usage("unknown option " + std::string(a.current()));
    } else if (!path) {
      path = std::string(a.take());
    } else {
      return usage("unexpected argument " + std::string(a.take()));
    }
  }
  if (!a.error().empty()) return usage(a.error());
  if (!path) return usage("create: missing PATH");
  if (o.lanes == 0) return usage("--lanes must be at least 1");
  o.lane_capacity_bytes = size / o.lanes;
  auto r = ring::Ring::create(*path, o);
  if (!r) {
    std::fprintf(stderr, "ringpipe ring create: %s\n", r.error().message().c_str());
    return kExitFailure;
  }
  std::printf("created %s: %u lanes x %s, %s, %u readers max\n", path->c_str(), r->lanes(),
              format_bytes(r->lane_capacity()).c_str(), std::string(ring::overflow_name(r->overflow())).c_str(),
              r->max_readers());
  return kExitOk;
}

int inspect(Args args) {
  if (args.size() != 1) return usage("inspect: expected exactly one PATH");
  auto r = ring::Ring::open(std::string(args[0]));
  if (!r) {
    std::fprintf(stderr, "ringpipe ring inspect: %s\n", r.error().message().c_str());
    return kExitFailure;
  }
  const ring::RingStats s = r->stats();
  std::string out;
  out += fmt::format("ring {}\n", s.path);
  out += fmt::format("  header: valid (magic, version and geometry checked), creation id {:016x}\n", s.creation_id);
  out += fmt::format("  geometry: {} lanes x {} = {}, file {}, max record {}\n", s.lanes,
                     format_bytes(s.lane_capacity_bytes), format_bytes(s.lane_capacity_bytes * s.lanes),
                     format_bytes(s.file_bytes), format_bytes(s.max_record_bytes));
  out += fmt::format("  overflow: {}, max readers {}\n", ring::overflow_name(s.overflow), s.max_readers);
  out += fmt::format("  {:>4} {:>9} {:>14} {:>12} {:>12} {:>12} {:>9} {:>9} {:>9}\n", "lane", "owner", "tail",
                     "next_seq", "records", "bytes", "dropped", "recovered", "fullwaits");
  for (const ring::LaneStats& l : s.lane) {
    out += fmt::format("  {:>4} {:>9} {:>14} {:>12} {:>12} {:>12} {:>9} {:>9} {:>9}\n", l.lane,
                       l.owned ? fmt::format("pid {}", l.owner_pid) : std::string("-"), l.tail, l.next_seq, l.records,
                       l.bytes, l.dropped_records, l.recovered_claims, l.full_waits);
  }
  out += fmt::format("  readers: {}\n", s.readers.size());
  for (const ring::ReaderStats& rd : s.readers) {
    out += fmt::format(
        "  reader {} slot {}: {} {} pid {}, lag {}, records {}, bytes {}, lapped {}, torn {}, corrupt {}, "
        "evictions {}\n",
        printable(rd.name), rd.slot, rd.alive ? "alive" : "not-alive", reader_state_name(rd.state), rd.pid,
        format_bytes(rd.lag_bytes), rd.records, rd.bytes, rd.lapped_records, rd.torn_records, rd.corrupt_records,
        rd.evictions);
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

int tail(Args args) {
  ArgScanner a(args);
  TailOptions options;
  std::optional<std::string> path;
  std::string error;
  while (!a.done()) {
    if (tail_option(a, options, &error)) {
      if (!error.empty()) return usage(error);
    } else if (!error.empty()) {
      return usage(error);
    } else if (a.current().rfind("--", 0) == 0) {
      return usage("unknown option " + std::string(a.current()));
    } else if (!path) {
      path = std::string(a.take());
    } else {
      return usage("unexpected argument " + std::string(a.take()));
    }
  }
  if (!path) return usage("tail: missing PATH");
  return tail_ring(*path, options, stdout);
}

int rm_reader(Args args) {
  if (args.size() != 2) return usage("rm-reader: expected PATH NAME");
  auto r = ring::Ring::open(std::string(args[0]));
  if (!r) {
    std::fprintf(stderr, "ringpipe ring rm-reader: %s\n", r.error().message().c_str());
    return kExitFailure;
  }
  if (auto st = r->remove_reader(args[1]); !st) {
    std::fprintf(stderr, "ringpipe ring rm-reader: %s\n", st.error().message().c_str());
    return kExitFailure;
  }
  std::printf("removed reader %.*s from %s\n", static_cast<int>(args[1].size()), args[1].data(), r->path().c_str());
  return kExitOk;
}

}  // namespace

int ring_command(Args args) {
  if (wants_help(args, "ring")) return kExitOk;
  if (args.empty()) return usage("missing subcommand: create, inspect, tail or rm-reader");
  const std::string_view sub = args[0];
  const Args rest = args.subspan(1);
  if (sub == "create") return create(rest);
  if (sub == "inspect") return inspect(rest);
  if (sub == "tail") return tail(rest);
  if (sub == "rm-reader") return rm_reader(rest);
  return usage("unknown subcommand \"" + std::string(sub) + "\": expected create, inspect, tail or rm-reader");
}

}  // namespace ringpipe::apps
