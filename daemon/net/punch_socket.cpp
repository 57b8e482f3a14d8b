#include "daemon/net/punch_socket.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>

namespace p2pd::net {

namespace asio = boost::asio;
using asio::ip::tcp;

void connect_from(asio::io_context& io, std::uint16_t local_port, const HostPort& remote,
                  std::chrono::milliseconds timeout, std::function<void(Result<ConnectedSocket>)> done) {
  struct Attempt {
    tcp::socket socket;
    asio::steady_timer deadline;
    std::function<void(Result<ConnectedSocket>)> done;
    bool timed_out = false;
    explicit Attempt(asio::io_context& context) : socket(context), deadline(context) {}
  };
  auto attempt = std::make_shared<Attempt>(io);
  attempt->done = std::move(done);
  auto fail = [&io, attempt](Error error) {
    asio::post(io, [attempt, error = std::move(error)] { attempt->done(error); });
  };
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(remote.host, ec);
  if (ec) return fail(make_error(ErrorCode::invalid_argument, "{} is not an IP address", remote.host));
  const tcp::endpoint target(ip, remote.port);
  attempt->socket.open(target.protocol(), ec);
  if (!ec) attempt->socket.set_option(tcp::socket::reuse_address(true), ec);
  if (!ec) attempt->socket.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
  if (!ec) {
    const auto any = target.protocol() == tcp::v4() ? asio::ip::address(asio::ip::address_v4::any())
                                                    : asio::ip::address(asio::ip::address_v6::any());
    attempt->socket.bind(tcp::endpoint(any, local_port), ec);
  }
  if (ec) return fail(make_error(ErrorCode::unavailable, "cannot bind port {}: {}", local_port, ec.message()));
  attempt->deadline.expires_after(timeout);
  attempt->deadline.async_wait([weak = std::weak_ptr<Attempt>(attempt)](const boost::system::error_code& wait_ec) {
    auto stuck = weak.lock();
    if (wait_ec || !stuck) return;
    stuck->timed_out = true;
    boost::system::error_code ignored;
    stuck->socket.cancel(ignored);
  });
  attempt->socket.async_connect(target, [attempt, remote, timeout](const boost::system::error_code& connect_ec) {
    attempt->deadline.cancel();
    if (connect_ec) {
      attempt->done(attempt->timed_out ? make_error(ErrorCode::timed_out, "no connection with {} within {} ms",
                                                    remote.to_string(), timeout.count())
                                       : make_error(ErrorCode::unavailable, "cannot connect to {}: {}",
                                                    remote.to_string(), connect_ec.message()));
      return;
    }
    boost::system::error_code ignored;
    attempt->socket.set_option(tcp::no_delay(true), ignored);
    const std::uint16_t port = attempt->socket.local_endpoint(ignored).port();
    const int fd = attempt->socket.release(ignored);
    if (fd < 0) {
      attempt->done(make_error(ErrorCode::unavailable, "cannot take the socket to {}", remote.to_string()));
      return;
    }
    // gRPC's endpoints expect a non-blocking socket.
    const int flags = ::fcntl(fd, F_GETFL, 0);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
      ::close(fd);
      attempt->done(
          make_error(ErrorCode::unavailable, "cannot make the socket to {} non-blocking", remote.to_string()));
      return;
    }
    attempt->done(ConnectedSocket{fd, port});
  });
}

}  // namespace p2pd::net
