// sources.<name> of type: remote_write: the one TCP address, the URL path and
// the per-request limits of the receiver.
#include <cstdint>
#include <string>

#include "pipeline_loader.hpp"

namespace ringpipe::config::detail {

// The HTTP endpoint of type: remote_write; its keys are refused on other types.
void Loader::read_remote_write(const Fields& f, SourceConfig& s) {
  static constexpr std::string_view kKeys[] = {"path", "max_series_per_request", "max_labels_per_request",
                                               "max_samples_per_request", "max_inflight_body_size"};
  if (!keys_only_on(f, s, SourceType::kRemoteWrite, kKeys, "a remote_write key")) return;
  RemoteWriteSourceConfig& r = s.remote_write;
  for (std::size_t i = 0; i < s.listen.size(); ++i) {
    const ListenAddress& a = s.listen[i];
    if (a.transport != Transport::kTcp) {
      d_.add(a.position, f.at("listen") + ": found " + quote(a.to_string()) +
                             ", expected a TCP host:port such as 127.0.0.1:9201 on type: remote_write");
    } else if (i > 0) {
      d_.add(a.position, f.at("listen") + ": found a second address, expected one host:port on type: remote_write");
    }
  }
  if (const auto* v = f.get("path")) {
    if (auto text = detail::read_string(*v, f.at("path"), d_)) {
      if (text->empty() || (*text)[0] != '/' || text->find_first_of(" ?#") != std::string::npos) {
        d_.add(*v, f.at("path") + ": found " + describe(*v) + ", expected an URL path such as /api/v1/write");
      } else {
        r.path = *text;
      }
    }
  }
  read_size_into(f, "max_body_size", 1024, 1u << 30, "1KiB to 1GiB", r.max_body_bytes);
  read_uint_into(f, "max_labels", 1, 64, r.max_labels);
  read_uint_into(f, "max_series_per_request", 1, 100'000'000, r.max_series_per_request);
  read_uint_into(f, "max_labels_per_request", 1, 1'000'000'000, r.max_labels_per_request);
  read_uint_into(f, "max_samples_per_request", 1, 1'000'000'000, r.max_samples_per_request);
  read_size_into(f, "max_inflight_body_size", r.max_body_bytes, std::uint64_t{64} << 30,
                 "max_body_size (" + std::to_string(r.max_body_bytes) + " bytes) to 64GiB", r.max_inflight_body_bytes);
}

}  // namespace ringpipe::config::detail
