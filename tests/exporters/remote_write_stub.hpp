#pragma once
// A stub Prometheus remote_write endpoint for tests (Boost.Beast on
// 127.0.0.1): it decodes each request (snappy + protobuf), answers the status
// a test scripts and keeps the samples of requests it answered 2xx.

#include <snappy.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "remote.pb.h"

namespace ringpipe::exporters::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

// One remote_write request as the stub saw it.
struct SeenRequest {
  std::string authorization;
  std::set<std::pair<std::string, std::int64_t>> samples;  // series, timestamp ms
};

// A remote_write endpoint: answer(request) picks each status; samples of
// requests answered 2xx are kept. Asio runs on one thread of its own; the
// accessors are safe from any thread.
class StubEndpoint {
 public:
  using Answer = std::function<int(const SeenRequest&, std::size_t index)>;
  // Listens on 127.0.0.1:`port` (0 = any free port).
  explicit StubEndpoint(Answer answer, std::uint16_t port = 0)
      : answer_(std::move(answer)), acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), port}) {
    accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~StubEndpoint() {
    ioc_.stop();
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/api/v1/write";
  }

  std::size_t requests() const {
    std::lock_guard lock(mu_);
    return seen_.size();
  }
  std::set<std::pair<std::string, std::int64_t>> stored() const {
    std::lock_guard lock(mu_);
    return stored_;
  }
  std::size_t stored_requests() const {
    std::lock_guard lock(mu_);
    return stored_requests_;
  }
  std::vector<SeenRequest> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  struct Session : std::enable_shared_from_this<Session> {
    Session(StubEndpoint& e, tcp::socket s) : ep(e), sock(std::move(s)) {}
    void read() {
      req = {};
      http::async_read(sock, buf, req, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (!ec) self->respond();
      });
    }
    void respond() {
      SeenRequest seen;
      if (auto it = req.find(http::field::authorization); it != req.end())
        seen.authorization = std::string(it->value());
      std::string raw;
      prometheus::WriteRequest wr;
      if (snappy::Uncompress(req.body().data(), req.body().size(), &raw) && wr.ParseFromString(raw)) {
        for (const auto& ts : wr.timeseries()) {
          std::string key;
          for (const auto& l : ts.labels()) key += l.name() + "=" + l.value() + ";";
          for (const auto& s : ts.samples()) seen.samples.insert({key, s.timestamp()});
        }
      }
      int status;
      {
        std::lock_guard lock(ep.mu_);
        status = ep.answer_(seen, ep.seen_.size());
        if (status / 100 == 2) {
          ep.stored_.insert(seen.samples.begin(), seen.samples.end());
          ++ep.stored_requests_;
        }
        ep.seen_.push_back(std::move(seen));
      }
      res = {};
      res.result(static_cast<unsigned>(status));
      res.version(11);
      res.keep_alive(true);
      res.body() = status / 100 == 2 ? "" : "stub says " + std::to_string(status);
      res.prepare_payload();
      http::async_write(sock, res, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (!ec) self->read();
      });
    }
    StubEndpoint& ep;
    tcp::socket sock;
    beast::flat_buffer buf;
    http::request<http::string_body> req;
    http::response<http::string_body> res;
  };

  void accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket s) {
      if (ec) return;
      std::make_shared<Session>(*this, std::move(s))->read();
      accept();
    });
  }

  Answer answer_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<SeenRequest> seen_;
  std::set<std::pair<std::string, std::int64_t>> stored_;
  std::size_t stored_requests_ = 0;
};

}  // namespace ringpipe::exporters::testing
