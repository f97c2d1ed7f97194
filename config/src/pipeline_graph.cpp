// Checks across sections, once every section is read: every ring named
// exists, has a producer and a reader, and enough reader slots; reader names
// are distinct per ring; no two listeners share an address.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "pipeline_loader.hpp"

namespace ringpipe::config::detail {

namespace {

bool is_wildcard_host(std::string_view h) { return h.empty() || h == "0.0.0.0" || h == "::" || h == "*"; }

std::string position_text(const Position& p) {
  return p.file + ":" + std::to_string(p.line) + ":" + std::to_string(p.column);
}

}  // namespace

// Hash lookups throughout: linear in rings and uses, however many there are.
void Loader::check_rings() {
  std::string names;
  std::unordered_map<std::string_view, std::vector<const RingUse*>> uses_of;  // ring name -> its uses, in order
  for (const auto& r : config_.rings) {
    names += (names.empty() ? "" : ", ") + r.name;
    uses_of.try_emplace(r.name);
  }
  for (const auto& use : uses_) {
    if (const auto it = uses_of.find(use.ring); it != uses_of.end()) {
      it->second.push_back(&use);
    } else {
      d_.add(use.position, use.component + " " + use.key + ": found ring " + quote(use.ring) +
                               ", which is not defined under rings, expected " +
                               (names.empty() ? std::string("a ring defined under rings") : "one of: " + names));
    }
  }
  for (const auto& r : config_.rings) {
    std::size_t producers = 0;
    std::vector<const RingUse*> readers;
    std::unordered_map<std::string_view, const RingUse*> first_reader;  // reader name -> its first use
    std::uint64_t slots = 0;
    for (const RingUse* u : uses_of[r.name]) {
      const RingUse& use = *u;
      if (use.producer) {
        ++producers;
      } else {
        const auto [first, fresh] = first_reader.try_emplace(use.reader, &use);
        if (!fresh) {
          d_.add(use.position, use.component + " " + use.key + ": found reader name " + quote(use.reader) +
                                   " already used on ring " + quote(r.name) + " by " + first->second->component +
                                   ", expected a distinct reader: name");
        }
        readers.push_back(&use);
        slots += use.slots;
      }
    }
    const std::string where = "ring " + quote(r.name);
    if (producers == 0) {
      d_.add(r.position,
             where + ": found no producer (no source or processor has output: " + r.name + "), expected at least one");
    }
    if (readers.empty()) {
      d_.add(r.position,
             where + ": found no reader (no processor or exporter has input: " + r.name + "), expected at least one");
    } else if (slots > r.max_readers) {
      // A processor with state keeps a second (gate) reader, so it counts twice.
      d_.add(r.position, where + ": found " + std::to_string(readers.size()) + " readers taking " +
                             std::to_string(slots) + " reader slots, expected at most max_readers (" +
                             std::to_string(r.max_readers) + ")");
    }
  }
}

void Loader::check_listeners() {
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    const ListenAddress& a = listeners_[i].address;
    for (std::size_t j = 0; j < i; ++j) {
      const ListenAddress& b = listeners_[j].address;
      const bool unix_a = a.transport == Transport::kUnix || a.transport == Transport::kUnixgram;
      const bool unix_b = b.transport == Transport::kUnix || b.transport == Transport::kUnixgram;
      bool clash = false;
      std::string what;
      if (unix_a && unix_b) {
        clash = a.path == b.path;
        what = "socket " + a.path;
      } else if (!unix_a && !unix_b && a.transport == b.transport && a.port != 0 && a.port == b.port) {
        clash = a.host == b.host || is_wildcard_host(a.host) || is_wildcard_host(b.host);
        what = "port " + std::to_string(a.port) + "/" + std::string(transport_name(a.transport));
      }
      if (clash) {
        d_.add(a.position, listeners_[i].component + " listen: found " + what + " already used by " +
                               listeners_[j].component + " (" + position_text(b.position) +
                               "), expected each address once");
        break;
      }
    }
  }
}

}  // namespace ringpipe::config::detail
