#pragma once
// Stream transports (TCP, Unix stream) on Boost.Asio: newline framing across
// reads, a max line length (longer lines counted and skipped, the connection
// survives), a budget for the partial lines of all connections together
// (a connection that would pass it is closed and counted), a connection limit
// and an idle timeout. Every handler runs on the
// one io_context thread that owns the Worker, so one claim per read batch.
// Asio errors are values here; nothing throws past this file.

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>
#include <boost/asio.hpp>

#include "ringpipe/common/log.hpp"
#include "ringpipe/common/result.hpp"
#include "ringpipe/ingest/ingest_server.hpp"
#include "worker.hpp"

namespace ringpipe::ingest {

struct StreamLimits {
  std::uint32_t max_connections;
  std::uint32_t max_line_bytes;
  std::size_t max_buffered_bytes;  // growth past kStreamReadChunk, all sessions of the listener together
  std::chrono::milliseconds idle_timeout;
  std::chrono::milliseconds error_log_interval;  // accept errors: one warning per interval
};

// After a failed accept (EMFILE, ENFILE, ENOBUFS...) the pending connection is
// still queued, so accepting again at once fails again at once: a busy loop
// on the io_context thread that starves every connection it serves. Wait
// first, doubling the wait while the errors last.
inline constexpr std::chrono::milliseconds kAcceptBackoffMin{10};
inline constexpr std::chrono::milliseconds kAcceptBackoffMax{1000};

// One connection. Its buffer starts at kStreamReadChunk and grows (doubling)
// only while a partial line fills it, up to one line of max_line_bytes plus
// its '\n'; the growth is charged to stats.buffered_bytes, and a connection
// whose growth would take that past max_buffered_bytes (but never below one
// whole line) is closed and counted in buffer_closed. The buffer shrinks back
// once the partial line fits the first chunk again.
template <class Protocol>
class StreamSession : public std::enable_shared_from_this<StreamSession<Protocol>> {
 public:
  StreamSession(typename Protocol::socket socket, const StreamLimits& limits, Worker& worker, StreamStats& stats)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        max_cap_(static_cast<std::size_t>(limits.max_line_bytes) + 1),
        base_cap_(std::min(max_cap_, kStreamReadChunk)),
        budget_(std::max(limits.max_buffered_bytes, max_cap_ - base_cap_)),
        cap_(base_cap_),
        buf_(std::make_unique_for_overwrite<char[]>(cap_)),
        idle_(limits.idle_timeout),
        worker_(worker),
        stats_(stats) {
    boost::system::error_code ec;
    const auto peer = socket_.remote_endpoint(ec);  // for the bad-line warning; unknown if it fails
    if (!ec && peer.size() <= sizeof peer_) {
      std::memcpy(&peer_, peer.data(), peer.size());
      peer_len_ = static_cast<socklen_t>(peer.size());
    }
  }
  ~StreamSession() { release(); }
  StreamSession(const StreamSession&) = delete;
  StreamSession& operator=(const StreamSession&) = delete;

  void start() {
    deadline_ = std::chrono::steady_clock::now() + idle_;
    read();
    wait_idle();
  }

 private:
  void read() {
    socket_.async_read_some(boost::asio::buffer(buf_.get() + used_, cap_ - used_),
                            [self = this->shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                              self->on_read(ec, n);
                            });
  }

  void on_read(const boost::system::error_code& ec, std::size_t n) {
    if (closed_) return;
    if (ec) {
      if (ec == boost::asio::error::eof) {
        if (!discarding_ && used_ > 0) parse(std::string_view(buf_.get(), used_));  // last line without '\n'
      } else if (ec != boost::asio::error::operation_aborted) {
        stats_.read_errors.fetch_add(1, std::memory_order_relaxed);
      }
      close();
      return;
    }
    stats_.bytes.fetch_add(n, std::memory_order_relaxed);
    deadline_ = std::chrono::steady_clock::now() + idle_;
    const std::size_t total = used_ + n;
    std::size_t start = 0;
    if (discarding_) {  // inside a too-long line: skip to its end
      const void* nl = std::memchr(buf_.get() + used_, '\n', n);
      if (nl == nullptr) {
        used_ = 0;
        read();
        return;
      }
      start = static_cast<std::size_t>(static_cast<const char*>(nl) - buf_.get()) + 1;
      discarding_ = false;
    }
    const void* last = ::memrchr(buf_.get() + start, '\n', total - start);
    if (last != nullptr) {
      const std::size_t end = static_cast<std::size_t>(static_cast<const char*>(last) - buf_.get());
      parse(std::string_view(buf_.get() + start, end - start));
      start = end + 1;
    }
    used_ = total - start;
    if (used_ > 0 && start > 0) std::memmove(buf_.get(), buf_.get() + start, used_);
    if (used_ == cap_ && cap_ < max_cap_) {  // a partial line fills the buffer: grow it, within the budget
      if (!resize(std::min(cap_ * 2, max_cap_))) {
        close();
        // Close before counting, as for idle_closed: whoever sees the count sees the connection gone.
        stats_.buffer_closed.fetch_add(1, std::memory_order_release);
        return;
      }
    } else if (used_ == cap_) {  // a whole buffer without '\n': longer than max_line_bytes
      worker_.count(ParseError::kLineTooLong);
      worker_.end();
      discarding_ = true;
      used_ = 0;
    }
    if (cap_ > base_cap_ && used_ <= base_cap_ / 2) resize(base_cap_);  // shrinking always succeeds
    read();
  }

  // Moves the partial line into a buffer of `cap` bytes (>= used_), charging
  // or releasing the difference; false, changing nothing, when the budget
  // cannot take it. Single-threaded (the io_context thread), so the load and
  // the add below are not a race; relaxed: a gauge, ordered with nothing.
  bool resize(std::size_t cap) {
    const std::size_t charge = cap - base_cap_;
    if (charge > charged_) {
      const std::uint64_t in_use = stats_.buffered_bytes.load(std::memory_order_relaxed);
      if (in_use + (charge - charged_) > budget_) return false;
    }
    auto next = std::make_unique_for_overwrite<char[]>(cap);
    if (used_ > 0) std::memcpy(next.get(), buf_.get(), used_);
    buf_ = std::move(next);
    cap_ = cap;
    if (charge > charged_) {
      stats_.buffered_bytes.fetch_add(charge - charged_, std::memory_order_relaxed);
    } else {
      stats_.buffered_bytes.fetch_sub(charged_ - charge, std::memory_order_relaxed);
    }
    charged_ = charge;
    return true;
  }

  void release() noexcept {
    stats_.buffered_bytes.fetch_sub(charged_, std::memory_order_relaxed);
    charged_ = 0;
  }

  void parse(std::string_view lines) {
    worker_.begin(realtime_ns());
    worker_.parse(lines, peer_len_ > 0 ? reinterpret_cast<const sockaddr*>(&peer_) : nullptr, peer_len_);
    worker_.end();
  }

  void wait_idle() {
    timer_.expires_at(deadline_);
    timer_.async_wait([self = this->shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->closed_) return;
      if (std::chrono::steady_clock::now() >= self->deadline_) {
        // Close before counting: whoever sees the count sees the connection
        // gone (release pairs with an acquire load of idle_closed).
        self->close();
        self->stats_.idle_closed.fetch_add(1, std::memory_order_release);
      } else {
        self->wait_idle();
      }
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
    timer_.cancel();
    stats_.connections_open.fetch_sub(1, std::memory_order_relaxed);
    release();  // the buffer itself goes with the session, once a cancelled read let go of it
  }

  typename Protocol::socket socket_;
  boost::asio::steady_timer timer_;
  std::size_t max_cap_;   // one line of max_line_bytes and its '\n'
  std::size_t base_cap_;  // kStreamReadChunk, or max_cap_ when smaller: never charged
  std::size_t budget_;    // max_buffered_bytes, but at least one line's growth
  std::size_t cap_;
  std::size_t charged_ = 0;  // cap_ - base_cap_, as added to stats_.buffered_bytes
  std::unique_ptr<char[]> buf_;
  std::size_t used_ = 0;
  bool discarding_ = false;
  bool closed_ = false;
  std::chrono::milliseconds idle_;
  std::chrono::steady_clock::time_point deadline_{};
  Worker& worker_;
  StreamStats& stats_;
  sockaddr_storage peer_{};
  socklen_t peer_len_ = 0;
};

// Accepts connections up to the limit; the rest are closed at once and counted.
// Accept errors are counted, logged at most once per interval, and retried
// after a backoff (kAcceptBackoffMin doubling to kAcceptBackoffMax). Runs on
// the io_context thread; open() and close() are its only other entry points.
template <class Protocol>
class StreamListener {
 public:
  [[nodiscard]] static Result<std::unique_ptr<StreamListener>> open(boost::asio::io_context& io,
                                                                    const typename Protocol::endpoint& ep,
                                                                    const StreamLimits& limits, Worker& worker,
                                                                    StreamStats& stats, const std::string& what) {
    if (limits.max_line_bytes == 0 || limits.max_connections == 0) {
      return invalid(what + ": max_line_bytes and max_connections must be > 0");
    }
    auto l = std::unique_ptr<StreamListener>(new StreamListener(io, limits, worker, stats, what));
    boost::system::error_code ec;
    l->acceptor_.open(ep.protocol(), ec);
    if (!ec && std::is_same_v<Protocol, boost::asio::ip::tcp>) {
      l->acceptor_.set_option(boost::asio::socket_base::reuse_address(true), ec);
    }
    if (!ec) l->acceptor_.bind(ep, ec);
    if (!ec) l->acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
    if (ec) return tl::unexpected(Error{std::error_code(ec.value(), std::system_category()), what + ": listen"});
    return l;
  }

  // Takes a socket already bound and listening (ringpipe run binds it and
  // hands it over); the listener owns `fd` from here, even on failure.
  [[nodiscard]] static Result<std::unique_ptr<StreamListener>> adopt(boost::asio::io_context& io,
                                                                     const Protocol& protocol, int fd,
                                                                     const StreamLimits& limits, Worker& worker,
                                                                     StreamStats& stats, const std::string& what) {
    if (limits.max_line_bytes == 0 || limits.max_connections == 0) {
      ::close(fd);
      return invalid(what + ": max_line_bytes and max_connections must be > 0");
    }
    auto l = std::unique_ptr<StreamListener>(new StreamListener(io, limits, worker, stats, what));
    boost::system::error_code ec;
    l->acceptor_.assign(protocol, fd, ec);
    if (ec) {
      ::close(fd);
      return tl::unexpected(Error{std::error_code(ec.value(), std::system_category()), what + ": adopt socket"});
    }
    return l;
  }

  void start() { accept(); }
  // Other protocols on the same accept loop (HTTP): `make` takes each accepted
  // socket instead of a StreamSession, and decrements connections_open when
  // it closes it. Set before start().
  using SessionFactory = std::function<void(typename Protocol::socket)>;
  void set_session_factory(SessionFactory make) { make_session_ = std::move(make); }
  // Stops accepting; open connections carry on. Call on the io_context thread.
  void close() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    backoff_timer_.cancel();
  }

  [[nodiscard]] std::uint16_t local_port() const {
    if constexpr (std::is_same_v<Protocol, boost::asio::ip::tcp>) {
      boost::system::error_code ec;
      return acceptor_.local_endpoint(ec).port();
    } else {
      return 0;
    }
  }

 private:
  StreamListener(boost::asio::io_context& io, const StreamLimits& limits, Worker& worker, StreamStats& stats,
                 std::string what)
      : acceptor_(io),
        backoff_timer_(io),
        limits_(limits),
        worker_(worker),
        stats_(stats),
        what_(std::move(what)),
        error_log_(limits.error_log_interval) {}

  void accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, typename Protocol::socket socket) {
      if (ec == boost::asio::error::operation_aborted || !acceptor_.is_open()) return;
      if (ec) {
        on_accept_error(ec);
        return;
      }
      backoff_ = kAcceptBackoffMin;
      if (stats_.connections_open.load(std::memory_order_relaxed) >= limits_.max_connections) {
        stats_.connections_rejected.fetch_add(1, std::memory_order_relaxed);
        boost::system::error_code ignored;
        socket.close(ignored);
      } else {
        stats_.connections.fetch_add(1, std::memory_order_relaxed);
        stats_.connections_open.fetch_add(1, std::memory_order_relaxed);
        if (make_session_) {
          make_session_(std::move(socket));
        } else {
          std::make_shared<StreamSession<Protocol>>(std::move(socket), limits_, worker_, stats_)->start();
        }
      }
      accept();
    });
  }

  void on_accept_error(const boost::system::error_code& ec) {
    stats_.accept_errors.fetch_add(1, std::memory_order_relaxed);
    if (error_log_.allow()) {
      spdlog::warn("{}: accept: {}; retrying in {} ms ({} similar warnings suppressed)", what_, ec.message(),
                   backoff_.count(), error_log_.take_suppressed());
    }
    backoff_timer_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, kAcceptBackoffMax);
    backoff_timer_.async_wait([this](const boost::system::error_code& wait_ec) {
      if (wait_ec || !acceptor_.is_open()) return;  // cancelled by close()
      accept();
    });
  }

  typename Protocol::acceptor acceptor_;
  boost::asio::steady_timer backoff_timer_;
  StreamLimits limits_;
  Worker& worker_;
  StreamStats& stats_;
  std::string what_;
  RateLimiter error_log_;
  std::chrono::milliseconds backoff_ = kAcceptBackoffMin;
  SessionFactory make_session_;
};

}  // namespace ringpipe::ingest
