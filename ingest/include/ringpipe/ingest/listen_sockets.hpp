#pragma once
// The listening sockets of one IngestServer, apart from the server: created,
// bound and (for streams) listening before anything reads them, so that
// `ringpipe run` can bind every source's sockets before it starts a process
// and hand them to each source as inherited descriptors (as systemd's socket
// activation does). The kernel queue of a socket then outlives a source that
// dies, and a restarted source takes the same socket instead of binding again.
// Safe from any thread; the descriptors are owned by the caller.

#include <map>
#include <string>
#include <vector>

#include "ringpipe/common/result.hpp"
#include "ringpipe/common/unique_fd.hpp"
#include "ringpipe/ingest/ingest_server.hpp"

namespace ringpipe::ingest {

struct ListenSocket {
  std::string key;   // "<config name>/udp<i>", "/tcp", "/unixgram", "/unix": unique within a source
  std::string what;  // for messages: "udp [::]:9125"
  UniqueFd fd;       // close-on-exec
};

// Binds every listener of `config`: each UDP socket (SO_REUSEPORT when there
// are several, SO_RXQ_OVFL, the receive buffer), the TCP listener, the Unix
// datagram and stream sockets (a stale socket file is replaced, anything else
// at the path is refused). A wildcard IPv6 address ("::") takes IPv4 too.
// Fails with "ingest NAME: udp 0.0.0.0:9125: bind: Address already in use".
[[nodiscard]] Result<std::vector<ListenSocket>> bind_listen_sockets(const IngestConfig& config);

// Parses one `KEY=FD` of `ringpipe component --listen-fd` into `into`;
// false on text that is not KEY=FD with FD >= 3.
[[nodiscard]] bool parse_listen_fd(std::string_view text, std::map<std::string, int>& into);

}  // namespace ringpipe::ingest
