#include "daemon/relay/relay_link.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <cstring>
#include <optional>

#include "common/log.hpp"

namespace p2pd::relay {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::shared_ptr<RelayLink> RelayLink::open(asio::io_context& io, HostPort allocation, Secret secret,
                                           OnInbound on_inbound, OnLost on_lost) {
  auto link = std::make_shared<RelayLink>(io, std::move(allocation), secret, std::move(on_inbound), std::move(on_lost));
  link->start();
  return link;
}

RelayLink::RelayLink(asio::io_context& io, HostPort allocation, Secret secret, OnInbound on_inbound, OnLost on_lost)
    : m_io(io),
      m_allocation(std::move(allocation)),
      m_secret(secret),
      m_on_inbound(std::move(on_inbound)),
      m_on_lost(std::move(on_lost)),
      m_control(io),
      m_keepalive(io) {}

namespace {

std::optional<tcp::endpoint> endpoint_of(const HostPort& addr) {
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(addr.host, ec);
  if (ec) return std::nullopt;
  return tcp::endpoint(ip, addr.port);
}

}  // namespace

void RelayLink::start() {
  const auto endpoint = endpoint_of(m_allocation);
  if (!endpoint) {
    asio::post(m_io, [self = shared_from_this()] { self->lose("the relay's address is not an IP address"); });
    return;
  }
  std::memcpy(m_greeting.data(), kControlMagic.data(), kMagicBytes);
  std::memcpy(m_greeting.data() + kMagicBytes, m_secret.data(), kSecretBytes);
  // The whole greeting must be through within the handshake time.
  m_keepalive.expires_after(kHandshakeTimeout);
  m_keepalive.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->m_connected) return;
    self->lose("no answer from the relay");
  });
  m_control.async_connect(*endpoint, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (self->m_closed) return;
    if (ec) {
      self->lose("cannot connect: " + ec.message());
      return;
    }
    boost::system::error_code ignored;
    self->m_control.set_option(tcp::no_delay(true), ignored);
    self->m_control.set_option(asio::socket_base::keep_alive(true), ignored);
    asio::async_write(self->m_control, asio::buffer(self->m_greeting),
                      [self](const boost::system::error_code& write_ec, std::size_t) {
                        if (self->m_closed) return;
                        if (write_ec) {
                          self->lose("cannot greet: " + write_ec.message());
                          return;
                        }
                        self->m_connected = true;
                        self->m_heard = std::chrono::steady_clock::now();
                        self->m_keepalive.cancel();
                        self->read_frame();
                        self->keepalive();
                      });
  });
}

void RelayLink::read_frame() {
  asio::async_read(m_control, asio::buffer(m_frame.data(), 1),
                   [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                     if (self->m_closed) return;
                     if (ec) {
                       self->lose(ec == asio::error::eof ? "closed by the relay" : ec.message());
                       return;
                     }
                     self->m_heard = std::chrono::steady_clock::now();
                     if (self->m_frame[0] == kFrameKeepalive) {
                       self->read_frame();
                       return;
                     }
                     if (self->m_frame[0] != kFrameCaller) {
                       self->lose("unknown frame from the relay");
                       return;
                     }
                     asio::async_read(self->m_control, asio::buffer(self->m_frame.data() + 1, kSecretBytes),
                                      [self](const boost::system::error_code& token_ec, std::size_t) {
                                        if (self->m_closed) return;
                                        if (token_ec) {
                                          self->lose(token_ec.message());
                                          return;
                                        }
                                        Secret token{};
                                        std::memcpy(token.data(), self->m_frame.data() + 1, kSecretBytes);
                                        self->open_leg(token);
                                        self->read_frame();
                                      });
                   });
}

void RelayLink::keepalive() {
  m_keepalive.expires_after(kKeepaliveInterval);
  m_keepalive.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->m_closed) return;
    if (std::chrono::steady_clock::now() - self->m_heard > kControlSilence) {
      self->lose("the relay went silent");
      return;
    }
    // One write at a time on the stream (a relay that stopped reading
    // shows up as silence instead).
    if (!self->m_ping_writing) {
      self->m_ping_writing = true;
      asio::async_write(self->m_control, asio::buffer(self->m_ping),
                        [self](const boost::system::error_code& write_ec, std::size_t) {
                          self->m_ping_writing = false;
                          if (write_ec && !self->m_closed) self->lose("keepalive: " + write_ec.message());
                        });
    }
    self->keepalive();
  });
}

void RelayLink::open_leg(const Secret& token) {
  const auto endpoint = endpoint_of(m_allocation);
  if (!endpoint) return;
  // A relay that announces callers faster than legs connect gets no more
  // than this many sockets of ours; the rest of its callers time out there.
  if (*m_legs_in_flight >= kMaxLegsInFlight) return;
  struct Leg {
    tcp::socket socket;
    asio::steady_timer deadline;
    std::array<std::uint8_t, kMagicBytes + kSecretBytes> greeting{};
    explicit Leg(asio::io_context& io) : socket(io), deadline(io) {}
    ~Leg() { --*in_flight; }
    std::shared_ptr<std::size_t> in_flight;
  };
  auto leg = std::make_shared<Leg>(m_io);
  leg->in_flight = m_legs_in_flight;
  ++*m_legs_in_flight;
  leg->deadline.expires_after(kHandshakeTimeout);
  leg->deadline.async_wait([weak = std::weak_ptr<Leg>(leg)](const boost::system::error_code& ec) {
    auto stuck = weak.lock();
    if (ec || !stuck) return;
    boost::system::error_code ignored;
    stuck->socket.close(ignored);
  });
  std::memcpy(leg->greeting.data(), kLegMagic.data(), kMagicBytes);
  std::memcpy(leg->greeting.data() + kMagicBytes, token.data(), kSecretBytes);
  leg->socket.async_connect(*endpoint, [self = shared_from_this(), leg](const boost::system::error_code& ec) {
    if (ec || self->m_closed) return;  // the caller's wait times out at the relay
    asio::async_write(leg->socket, asio::buffer(leg->greeting),
                      [self, leg](const boost::system::error_code& write_ec, std::size_t) {
                        leg->deadline.cancel();
                        if (write_ec || self->m_closed) return;
                        boost::system::error_code ignored;
                        leg->socket.set_option(tcp::no_delay(true), ignored);
                        const int fd = leg->socket.release(ignored);
                        if (fd < 0) return;
                        // gRPC's endpoints expect a non-blocking socket.
                        const int flags = ::fcntl(fd, F_GETFL, 0);
                        if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
                          ::close(fd);
                          return;
                        }
                        ++self->m_legs;
                        self->m_on_inbound(fd);
                      });
  });
}

void RelayLink::lose(std::string why) {
  if (m_closed) return;
  close();
  if (m_on_lost) m_on_lost(std::move(why));
}

void RelayLink::close() {
  if (m_closed) return;
  m_closed = true;
  boost::system::error_code ignored;
  m_control.close(ignored);
  m_keepalive.cancel();
}

}  // namespace p2pd::relay
