#include "ringpipe/ingest/ingest_server.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio.hpp>

#include "listen_util.hpp"
#include "ringpipe/common/unique_fd.hpp"
#include "ringpipe/ingest/listen_sockets.hpp"
#include "source_stats.hpp"
#include "stream_session.hpp"
#include "worker.hpp"

namespace ringpipe::ingest {

namespace asio = boost::asio;

std::uint64_t IngestStats::udp_kernel_drops_total() const noexcept {
  std::uint64_t n = 0;
  for (const auto& d : udp_kernel_drops) n += d.load(std::memory_order_relaxed);
  return n;
}

namespace {

constexpr int kPollMs = 50;          // how often receive threads look at the stop flag
constexpr int kDrainBatches = 4096;  // bound on the final drain at stop
// After reading datagrams, a receive thread lets the next ones gather in the
// socket buffer this long before it looks again: under a steady stream of
// small packets it then takes dozens per recvmmsg and per ring record (one
// claim, one commit, one wake-up of the readers) instead of one each. A
// packet that arrives while the thread waits in poll() is read at once; the
// socket buffer (read_buffer, 8 MiB by default) holds far more than a
// millisecond of any rate one thread can parse.
constexpr std::int64_t kCoalesceNs = 1'000'000;

std::string endpoint_text(const std::string& address, std::uint16_t port) {
  return address + ":" + std::to_string(port);
}

// One datagram socket (UDP or Unix) with its receive thread and Worker.
struct DatagramListener {
  std::string what;
  int fd = -1;
  std::uint32_t batch = 32;
  std::uint32_t max_datagram = 65536;
  std::atomic<std::uint64_t>* packets = nullptr;
  std::atomic<std::uint64_t>* bytes = nullptr;
  std::atomic<std::uint64_t>* truncated = nullptr;
  std::atomic<std::uint64_t>* kernel_drops = nullptr;
  std::unique_ptr<Worker> worker;
};

// Returns the datagrams read (0 when none were waiting).
int receive_batch(DatagramListener& l, std::vector<mmsghdr>& msgs, std::vector<iovec>& iov, std::vector<char>& data,
                  std::vector<char>& control, std::size_t control_each) noexcept {
  for (std::uint32_t i = 0; i < l.batch; ++i) {
    msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);  // the sender, for the bad-line warning
    msgs[i].msg_hdr.msg_control = control.data() + i * control_each;
    msgs[i].msg_hdr.msg_controllen = control_each;
    msgs[i].msg_hdr.msg_flags = 0;
    msgs[i].msg_len = 0;
  }
  const int n = ::recvmmsg(l.fd, msgs.data(), l.batch, MSG_DONTWAIT, nullptr);
  if (n <= 0) return 0;
  l.worker->begin(realtime_ns());
  std::uint64_t bytes = 0;
  std::uint64_t truncated = 0;
  for (int i = 0; i < n; ++i) {
    const msghdr& h = msgs[i].msg_hdr;
    std::string_view packet(static_cast<const char*>(iov[i].iov_base),
                            std::min<std::size_t>(msgs[i].msg_len, l.max_datagram));
    bytes += msgs[i].msg_len;
    if (h.msg_flags & MSG_TRUNC) {  // keep the whole lines, drop the cut one
      ++truncated;
      const std::size_t nl = packet.rfind('\n');
      packet = nl == std::string_view::npos ? std::string_view{} : packet.substr(0, nl);
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(const_cast<msghdr*>(&h)); c != nullptr;
         c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
        std::uint32_t drops = 0;
        std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
        // Cumulative per socket: keep the largest seen.
        std::uint64_t prev = l.kernel_drops->load(std::memory_order_relaxed);
        while (drops > prev && !l.kernel_drops->compare_exchange_weak(prev, drops, std::memory_order_relaxed)) {
        }
      }
    }
    l.worker->parse(packet, static_cast<const sockaddr*>(h.msg_name), h.msg_namelen);
  }
  (void)data;
  l.worker->end();
  l.packets->fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
  l.bytes->fetch_add(bytes, std::memory_order_relaxed);
  if (truncated) l.truncated->fetch_add(truncated, std::memory_order_relaxed);
  return n;
}

void datagram_loop(DatagramListener& l, const std::atomic<bool>& stopping) noexcept {
  const std::size_t control_each = CMSG_SPACE(sizeof(std::uint32_t));
  std::vector<mmsghdr> msgs(l.batch);
  std::vector<iovec> iov(l.batch);
  std::vector<char> data(static_cast<std::size_t>(l.batch) * l.max_datagram);
  std::vector<char> control(l.batch * control_each);
  std::vector<sockaddr_storage> senders(l.batch);
  for (std::uint32_t i = 0; i < l.batch; ++i) {
    iov[i].iov_base = data.data() + static_cast<std::size_t>(i) * l.max_datagram;
    iov[i].iov_len = l.max_datagram;
    std::memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &senders[i];
  }
  while (!stopping.load(std::memory_order_acquire)) {
    pollfd p{l.fd, POLLIN, 0};
    if (::poll(&p, 1, kPollMs) <= 0) continue;
    int got = 0;
    while ((got = receive_batch(l, msgs, iov, data, control, control_each)) == static_cast<int>(l.batch)) {
      if (stopping.load(std::memory_order_relaxed)) break;
    }
    if (got > 0) {
      const timespec nap{0, kCoalesceNs};
      (void)::nanosleep(&nap, nullptr);
    }
  }
  // What the kernel already holds was sent before we stopped: take it (bounded).
  for (int i = 0; i < kDrainBatches && receive_batch(l, msgs, iov, data, control, control_each) > 0; ++i) {
  }
}

// Removes the socket file at stop, but only if it is still a socket.
void remove_socket_file(const std::string& path) noexcept {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
}

}  // namespace

struct IngestServer::Impl {
  IngestConfig config;
  IngestStats stats;
  RateLimiter error_log;
  asio::io_context io;  // stream listeners; also owns the datagram sockets
  // Datagram sockets are read by their own threads with poll/recvmmsg; they
  // are released from the io_context's reactor once bound, or its epoll
  // (edge-triggered) would wake the stream thread for every datagram.
  std::vector<UniqueFd> udp_sockets;
  std::optional<UniqueFd> unix_dgram;
  std::vector<std::unique_ptr<DatagramListener>> datagram;
  std::unique_ptr<Worker> stream_worker;
  std::unique_ptr<StreamListener<asio::ip::tcp>> tcp;
  std::unique_ptr<StreamListener<asio::local::stream_protocol>> unix_stream;
  std::vector<std::thread> threads;
  std::atomic<bool> stopping{false};
  std::atomic<bool> started{false};
  std::mutex stop_mutex;
  std::mutex join_mutex;
  std::condition_variable stop_cv;
  bool stop_requested = false;
  std::uint16_t udp_port = 0;
  std::uint16_t tcp_port = 0;
  std::unique_ptr<stats::Publisher> publisher;
  bool owns_socket_files = false;       // bound the Unix sockets itself: removes their files at the end
  std::map<std::string, UniqueFd> fds;  // listening sockets by key, until a listener takes its own

  explicit Impl(const IngestConfig& c) : config(c), error_log(c.error_log_interval) {}

  // The socket of listener `key`, taken out of `fds`; fails when none was bound or handed over.
  Result<UniqueFd> take_fd(const std::string& key, const std::string& what, int type);
  Status adopt_udp(const UdpConfig& u, TargetFactory& targets);
  Status adopt_unix_datagram(const UnixDatagramConfig& u, TargetFactory& targets);
  Result<std::unique_ptr<Worker>> make_worker(TargetFactory& targets) {
    auto t = targets();
    if (!t) return tl::unexpected(t.error());
    return std::make_unique<Worker>(config, std::move(*t), stats, error_log);
  }
  void join() noexcept;
};

Result<UniqueFd> IngestServer::Impl::take_fd(const std::string& key, const std::string& what, int type) {
  auto it = fds.find(key);
  if (it == fds.end() || !it->second.valid()) return invalid(what + ": no socket was handed over for " + key);
  UniqueFd fd = std::move(it->second);
  fds.erase(it);
  int got = 0;
  socklen_t len = sizeof got;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &got, &len) != 0 || got != type)
    return invalid(what + ": descriptor " + std::to_string(fd.get()) + " handed over for " + key +
                   " is not a socket of the right type");
  return fd;
}

Status IngestServer::Impl::adopt_udp(const UdpConfig& u, TargetFactory& targets) {
  const std::string what = "ingest " + config.name + ": udp " + endpoint_text(u.address, u.port);
  if (u.sockets == 0 || u.sockets > kMaxUdpSockets)
    return invalid(what + ": sockets must be 1.." + std::to_string(kMaxUdpSockets));
  if (u.batch_packets == 0 || u.max_datagram_bytes == 0)
    return invalid(what + ": batch_packets and max_datagram_bytes must be > 0");
  for (std::uint32_t i = 0; i < u.sockets; ++i) {
    auto fd = take_fd(listen_key(config.name, "udp", i), what, SOCK_DGRAM);
    if (!fd) return tl::unexpected(fd.error());
    // Read by its own thread with poll/recvmmsg, never registered with the
    // io_context (see udp_sockets).
    const int one = 1;
    (void)::setsockopt(fd->get(), SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
    udp_port = bound_port(fd->get());
    auto l = std::make_unique<DatagramListener>();
    l->what = what;
    l->fd = fd->get();
    l->batch = u.batch_packets;
    l->max_datagram = u.max_datagram_bytes;
    l->packets = &stats.udp_packets;
    l->bytes = &stats.udp_bytes;
    l->truncated = &stats.udp_truncated;
    l->kernel_drops = &stats.udp_kernel_drops[i];
    auto w = make_worker(targets);
    if (!w) return tl::unexpected(Error{w.error().code, what + ": " + w.error().context});
    l->worker = std::move(*w);
    datagram.push_back(std::move(l));
    udp_sockets.push_back(std::move(*fd));
  }
  return {};
}

Status IngestServer::Impl::adopt_unix_datagram(const UnixDatagramConfig& u, TargetFactory& targets) {
  const std::string what = "ingest " + config.name + ": unixgram " + u.path;
  if (u.batch_packets == 0 || u.max_datagram_bytes == 0)
    return invalid(what + ": batch_packets and max_datagram_bytes must be > 0");
  auto fd = take_fd(listen_key(config.name, "unixgram"), what, SOCK_DGRAM);
  if (!fd) return tl::unexpected(fd.error());
  const int one = 1;
  (void)::setsockopt(fd->get(), SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  auto l = std::make_unique<DatagramListener>();
  l->what = what;
  l->fd = fd->get();
  l->batch = u.batch_packets;
  l->max_datagram = u.max_datagram_bytes;
  l->packets = &stats.unix_datagram_packets;
  l->bytes = &stats.udp_bytes;  // bytes of all datagrams
  l->truncated = &stats.udp_truncated;
  l->kernel_drops = &stats.unix_datagram_kernel_drops;
  auto w = make_worker(targets);
  if (!w) return tl::unexpected(Error{w.error().code, what + ": " + w.error().context});
  l->worker = std::move(*w);
  datagram.push_back(std::move(l));
  unix_dgram.emplace(std::move(*fd));
  return {};
}

void IngestServer::Impl::join() noexcept {
  std::lock_guard lock(join_mutex);
  stopping.store(true, std::memory_order_release);  // datagram threads drain their sockets and exit
  if (!threads.empty() && (tcp || unix_stream)) {
    boost::asio::post(io, [this] {
      if (tcp) tcp->close();
      if (unix_stream) unix_stream->close();
    });
    const std::int64_t deadline = monotonic_ns() + std::chrono::nanoseconds(config.stop_drain_timeout).count();
    while (stats.tcp.connections_open.load() + stats.unix_stream.connections_open.load() > 0 &&
           monotonic_ns() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  io.stop();
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
  threads.clear();
  if (publisher) publisher->stop();  // every thread is done: the segment gets exact totals
}

Result<std::unique_ptr<IngestServer>> IngestServer::create(const IngestConfig& config, TargetFactory targets) {
  auto impl = std::make_unique<Impl>(config);
  if (config.listen_fds.empty()) {  // alone: bind our own
    auto bound = bind_listen_sockets(config);
    if (!bound) return tl::unexpected(bound.error());
    for (ListenSocket& l : *bound) impl->fds.emplace(l.key, std::move(l.fd));
    impl->owns_socket_files = true;
  } else {  // handed over: ours from here, including those no listener takes
    for (const auto& [key, fd] : config.listen_fds) impl->fds.emplace(key, UniqueFd(fd));
  }
  try {  // Asio may throw (e.g. out of memory); it stops here.
    if (config.udp) {
      if (auto s = impl->adopt_udp(*config.udp, targets); !s) return tl::unexpected(s.error());
    }
    if (config.unix_datagram) {
      if (auto s = impl->adopt_unix_datagram(*config.unix_datagram, targets); !s) return tl::unexpected(s.error());
    }
    if (config.tcp || config.unix_stream) {
      auto w = impl->make_worker(targets);
      if (!w) return tl::unexpected(Error{w.error().code, "ingest " + config.name + ": " + w.error().context});
      impl->stream_worker = std::move(*w);
    }
    if (config.tcp) {
      const TcpConfig& t = *config.tcp;
      const std::string what = "ingest " + config.name + ": tcp " + endpoint_text(t.address, t.port);
      auto fd = impl->take_fd(listen_key(config.name, "tcp"), what, SOCK_STREAM);
      if (!fd) return tl::unexpected(fd.error());
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      (void)::getsockname(fd->get(), reinterpret_cast<sockaddr*>(&ss), &len);
      StreamLimits limits{t.max_connections, t.max_line_bytes, t.max_buffered_bytes, t.idle_timeout,
                          config.error_log_interval};
      auto l = StreamListener<asio::ip::tcp>::adopt(
          impl->io, ss.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd->release(), limits,
          *impl->stream_worker, impl->stats.tcp, what);
      if (!l) return tl::unexpected(l.error());
      impl->tcp_port = (*l)->local_port();
      impl->tcp = std::move(*l);
    }
    if (config.unix_stream) {
      const UnixStreamConfig& u = *config.unix_stream;
      const std::string what = "ingest " + config.name + ": unix " + u.path;
      auto fd = impl->take_fd(listen_key(config.name, "unix"), what, SOCK_STREAM);
      if (!fd) return tl::unexpected(fd.error());
      StreamLimits limits{u.max_connections, u.max_line_bytes, u.max_buffered_bytes, u.idle_timeout,
                          config.error_log_interval};
      auto l = StreamListener<asio::local::stream_protocol>::adopt(impl->io, asio::local::stream_protocol(),
                                                                   fd->release(), limits, *impl->stream_worker,
                                                                   impl->stats.unix_stream, what);
      if (!l) return tl::unexpected(l.error());
      impl->unix_stream = std::move(*l);
    }
  } catch (const std::exception& e) {
    return invalid("ingest " + config.name + ": " + e.what());
  }
  std::shared_ptr<stats::StatsSegment> segment = config.stats_segment;
  if (!segment && !config.stats_path.empty()) {
    auto created = stats::StatsSegment::create(config.stats_path, config.name, "source");
    if (!created)
      return tl::unexpected(Error{created.error().code, "ingest " + config.name + ": " + created.error().context});
    created->reset_gauges();  // a previous run's open connections are gone
    segment = std::make_shared<stats::StatsSegment>(std::move(*created));
  }
  if (segment) {
    auto p = create_source_publisher(std::move(segment), config, impl->stats, impl->udp_port);
    if (!p) return tl::unexpected(Error{p.error().code, "ingest " + config.name + ": stats: " + p.error().context});
    impl->publisher = std::move(*p);
  }
  return std::unique_ptr<IngestServer>(new IngestServer(std::move(impl)));
}

IngestServer::IngestServer(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

IngestServer::~IngestServer() {
  stop();
  if (!impl_->owns_socket_files) return;  // the supervisor's sockets: their files stay for the next start
  if (impl_->config.unix_datagram) remove_socket_file(impl_->config.unix_datagram->path);
  if (impl_->config.unix_stream) remove_socket_file(impl_->config.unix_stream->path);
}

Status IngestServer::start() {
  if (impl_->started.exchange(true)) return invalid("ingest " + impl_->config.name + ": already started");
  try {
    for (auto& l : impl_->datagram) {
      DatagramListener* dl = l.get();
      impl_->threads.emplace_back([dl, this] { datagram_loop(*dl, impl_->stopping); });
    }
    if (impl_->tcp || impl_->unix_stream) {
      if (impl_->tcp) impl_->tcp->start();
      if (impl_->unix_stream) impl_->unix_stream->start();
      impl_->threads.emplace_back([this] {
        try {
          auto guard = asio::make_work_guard(impl_->io);
          impl_->io.run();
        } catch (const std::exception& e) {
          spdlog::error("ingest {}: stream thread stopped: {}", impl_->config.name, e.what());
        }
      });
    }
    if (impl_->publisher) {
      if (Status publishing = impl_->publisher->start(impl_->config.stats_interval); !publishing) {
        impl_->join();
        return tl::unexpected(
            Error{publishing.error().code, "ingest " + impl_->config.name + ": start: " + publishing.error().context});
      }
    }
  } catch (const std::exception& e) {
    impl_->join();
    return invalid("ingest " + impl_->config.name + ": start: " + e.what());
  }
  spdlog::info("ingest {}: {} listening (udp port {}, tcp port {}, {} threads)", impl_->config.name,
               protocol_name(impl_->config.parser.protocol), impl_->udp_port, impl_->tcp_port, impl_->threads.size());
  return {};
}

Status IngestServer::run() {
  if (auto s = start(); !s) return s;
  std::unique_lock lock(impl_->stop_mutex);
  impl_->stop_cv.wait(lock, [this] { return impl_->stop_requested; });
  return {};
}

void IngestServer::stop() noexcept {
  {
    std::lock_guard lock(impl_->stop_mutex);
    if (impl_->stop_requested && impl_->threads.empty()) return;
    impl_->stop_requested = true;
  }
  impl_->stop_cv.notify_all();
  impl_->join();
}

const IngestStats& IngestServer::stats() const noexcept { return impl_->stats; }
std::uint16_t IngestServer::udp_port() const noexcept { return impl_->udp_port; }
std::uint16_t IngestServer::tcp_port() const noexcept { return impl_->tcp_port; }

}  // namespace ringpipe::ingest
