#pragma once
// The pipeline file's loader: one Loader per parse_pipeline() call holds the
// context every section reader shares (the diagnostics, the config being
// filled, the ring uses and listeners the graph checks look at once every
// section is read). Each section has its own file:
//   pipeline_top_level.cpp            run(): the top-level keys and the section walk
//   pipeline_loader.cpp               typed reads shared by the sections (rings named, listen addresses, readers)
//   pipeline_rings.cpp                rings.<name>
//   pipeline_sources.cpp              sources.<name>: the keys of every type, the JSON field mapping
//   pipeline_mqtt_source.cpp          sources.<name> of type: mqtt
//   pipeline_scrape_source.cpp        sources.<name> of type: prometheus_scrape
//   pipeline_remote_write_source.cpp  sources.<name> of type: remote_write
//   pipeline_processors.cpp           processors.<name> and their mapping files
//   pipeline_exporters.cpp            exporters.<name>, type: prometheus, and TLS blocks
//   pipeline_remote_write_exporter.cpp  exporters.<name> of type: remote_write
//   pipeline_graph.cpp                checks across sections: ring producers/readers, listener clashes
// Problems are collected as diagnostics, never thrown. Not thread-safe: one
// Loader is used by one call, on one thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringpipe/config/diagnostic.hpp"
#include "ringpipe/config/pipeline.hpp"
#include "schema.hpp"
#include "yaml_tree.hpp"

namespace ringpipe::config::detail {

inline constexpr std::size_t kMaxNameBytes = 39;  // a ring reader name's limit; readers default to component names

// A pipeline, ring, component or reader name: [A-Za-z0-9_.-]+, at most kMaxNameBytes, not "." or "..".
bool valid_name(std::string_view s);

// A port 1..65535 written as plain digits.
bool parse_port(std::string_view text, std::uint16_t& out);

// One use of a ring by a component: checked once every ring is known.
struct RingUse {
  std::string ring;
  std::string component;  // `source "statsd"`
  std::string key;        // "input" / "output"
  std::string reader;     // readers only
  bool producer = false;
  Position position;
  std::uint32_t slots = 1;  // reader slots taken: a processor with state also keeps its gate reader
};

// A socket some component listens on.
struct Listener {
  ListenAddress address;
  std::string component;
};

class Loader {
 public:
  Loader(std::string_view text, std::string_view filename, const EnvLookup& env, std::vector<Diagnostic>& main,
         std::vector<Diagnostic>& nested)
      : text_(text), filename_(filename), env_(env), main_(main), d_(main), nested_(nested) {}

  // Reads the whole file; what could not be read is left at its default and reported.
  PipelineConfig run();

 private:
  template <class F>
  void for_each_entry(const YamlNode* section, std::string_view what, F&& f);

  // A null value (`raw:`) means "all defaults".
  static const YamlNode* body(const YamlNode& value) { return value.is_null() ? nullptr : &value; }

  template <class T>
  void read_uint_into(const Fields& f, std::string_view key, std::uint64_t min, std::uint64_t max, T& out) {
    if (const auto* v = f.get(key)) {
      if (auto x = detail::read_uint(*v, f.at(key), min, max, d_)) out = static_cast<T>(*x);
    }
  }
  // A size key within [min, max]; `range` words the bounds for the message
  // ("from 1KiB to 1GiB").
  template <class T>
  void read_size_into(const Fields& f, std::string_view key, std::uint64_t min, std::uint64_t max,
                      const std::string& range, T& out) {
    if (const auto* v = f.get(key)) {
      if (auto x = detail::read_size(*v, f.at(key), d_)) {
        if (*x < min || *x > max) {
          d_.add(*v, f.at(key) + ": found " + describe(*v) + ", expected from " + range);
        } else {
          out = static_cast<T>(*x);
        }
      }
    }
  }
  void read_millis_into(const Fields& f, std::string_view key, std::chrono::milliseconds& out, bool positive = false);
  void read_string_into(const Fields& f, std::string_view key, std::string& out);

  // Calls one(node) for a scalar, or for each item of a sequence; an empty
  // sequence is an error that expects `at_least_one`.
  template <class F>
  void read_list(const YamlNode& v, const std::string& what, std::string_view at_least_one, F&& one) {
    if (!v.is_sequence()) {
      one(v);
      return;
    }
    for (const auto& item : v.items) one(item);
    if (v.items.empty()) d_.add(v, what + ": found an empty list, expected at least one " + std::string(at_least_one));
  }

  void use_ring(const Fields& f, std::string_view key, const std::string& component, bool producer,
                const Position& owner, std::string& out, const std::string& reader = {});
  void read_listen(const YamlNode& v, const std::string& what, std::optional<Transport> implied,
                   std::vector<ListenAddress>& out, const std::string& component);
  void read_reader(const Fields& f, std::string& reader);

  // pipeline_rings.cpp
  void read_ring(const YamlNode& key, const YamlNode& value);

  // pipeline_sources.cpp
  void read_source(const YamlNode& key, const YamlNode& value);
  bool keys_only_on(const Fields& f, const SourceConfig& s, SourceType type, std::span<const std::string_view> keys,
                    std::string_view what);
  void read_json_mapping(const Fields& f, SourceConfig& s);
  // pipeline_mqtt_source.cpp, pipeline_scrape_source.cpp, pipeline_remote_write_source.cpp
  void read_mqtt(const Fields& f, SourceConfig& s);
  void read_scrape(const Fields& f, SourceConfig& s);
  void read_remote_write(const Fields& f, SourceConfig& s);

  // pipeline_processors.cpp
  void read_processor(const YamlNode& key, const YamlNode& value);
  void read_mapping_config(const YamlNode& v, const std::string& what, ProcessorConfig& p);

  // pipeline_exporters.cpp, pipeline_remote_write_exporter.cpp
  void read_exporter(const YamlNode& key, const YamlNode& value);
  void read_tls(const YamlNode& v, const std::string& what, bool client, std::optional<TlsConfig>& out);
  void read_remote_write(const Fields& f, const std::string& who, ExporterConfig& e);

  // pipeline_graph.cpp
  void check_rings();
  void check_listeners();

  std::string_view text_;
  std::string_view filename_;
  const EnvLookup& env_;
  std::vector<Diagnostic>& main_;
  Diags d_;
  std::vector<Diagnostic> quiet_;
  Diags d_quiet_{quiet_};
  std::vector<Diagnostic>& nested_;
  PipelineConfig config_;
  std::vector<RingUse> uses_;
  std::vector<Listener> listeners_;
};

// TlsConfig::contents_digest: the named files as they are now; one that cannot
// be read counts as empty (the component that opens it reports why). For a
// pipeline file's tls blocks and for --web.config.file alike.
std::uint64_t digest_of_files(const TlsConfig& t);

}  // namespace ringpipe::config::detail
