#include "daemon/tls/tunnel.hpp"

#include <boost/asio/write.hpp>

namespace p2pd::tls {

std::shared_ptr<Tunnel> Tunnel::start(std::shared_ptr<SecureStream> secure, Socket plain,
                                      std::chrono::milliseconds write_stall_limit, std::function<void()> on_closed) {
  auto tunnel = std::make_shared<Tunnel>(std::move(secure), std::move(plain), write_stall_limit, std::move(on_closed));
  tunnel->read_secure();
  tunnel->read_plain();
  return tunnel;
}

Tunnel::Tunnel(std::shared_ptr<SecureStream> secure, Socket plain, std::chrono::milliseconds write_stall_limit,
               std::function<void()> on_closed)
    : m_secure(std::move(secure)),
      m_plain(std::move(plain)),
      m_write_stall_limit(write_stall_limit),
      m_on_closed(std::move(on_closed)),
      m_to_plain_stall(m_plain.get_executor()),
      m_to_peer_stall(m_plain.get_executor()) {}

void Tunnel::arm(boost::asio::steady_timer& timer, std::uint64_t& writes) {
  const std::uint64_t write = ++writes;
  timer.expires_after(m_write_stall_limit);
  timer.async_wait([self = shared_from_this(), &writes, write](const boost::system::error_code& ec) {
    if (!ec && writes == write) self->close();
  });
}

void Tunnel::disarm(boost::asio::steady_timer& timer, std::uint64_t& writes) {
  ++writes;
  timer.cancel();
}

// The pending operations hold the tunnel (shared_from_this); closing both
// sockets completes them, and the last one frees it.
void Tunnel::read_secure() {
  m_secure->async_read_some(boost::asio::buffer(m_from_peer), [self = shared_from_this()](
                                                                  const boost::system::error_code& ec, std::size_t n) {
    if (ec || self->m_closed) return self->close();
    self->arm(self->m_to_plain_stall, self->m_to_plain_writes);
    boost::asio::async_write(self->m_plain, boost::asio::buffer(self->m_from_peer.data(), n),
                             [self](const boost::system::error_code& write_ec, std::size_t /*written*/) {
                               disarm(self->m_to_plain_stall, self->m_to_plain_writes);
                               if (write_ec || self->m_closed) return self->close();
                               self->read_secure();
                             });
  });
}

void Tunnel::read_plain() {
  m_plain.async_read_some(
      boost::asio::buffer(m_to_peer), [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
        if (ec || self->m_closed) return self->close();
        self->arm(self->m_to_peer_stall, self->m_to_peer_writes);
        boost::asio::async_write(*self->m_secure, boost::asio::buffer(self->m_to_peer.data(), n),
                                 [self](const boost::system::error_code& write_ec, std::size_t /*written*/) {
                                   disarm(self->m_to_peer_stall, self->m_to_peer_writes);
                                   if (write_ec || self->m_closed) return self->close();
                                   self->read_plain();
                                 });
      });
}

void Tunnel::close() {
  if (m_closed) return;
  m_closed = true;
  boost::system::error_code ignored;
  // No close_notify: the peer sees the TCP connection end, which gRPC on
  // its side treats the same way.
  m_secure->lowest_layer().close(ignored);
  m_plain.close(ignored);
  m_to_plain_stall.cancel();
  m_to_peer_stall.cancel();
  if (m_on_closed) {
    auto on_closed = std::move(m_on_closed);
    m_on_closed = nullptr;
    on_closed();
  }
}

}  // namespace p2pd::tls
