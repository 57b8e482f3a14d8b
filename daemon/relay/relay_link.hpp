#pragma once
// The reserving side of a relay (relay_wire.hpp): an unreachable node keeps
// a control connection open to its allocation on a reachable peer and, for
// each caller the relay announces, opens a leg outward (its router lets an
// outgoing connection through) and hands the connected socket to its gRPC
// server, which serves the caller on it as on any accepted connection.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>

#include "common/host_port.hpp"
#include "daemon/relay/relay_wire.hpp"

namespace p2pd::relay {

class RelayLink : public std::enable_shared_from_this<RelayLink> {
 public:
  // `on_inbound(fd)`: a caller's leg, connected and non-blocking; the
  // callee owns the descriptor. `on_lost(why)`: the control connection is
  // gone (once; the link is then closed).
  using OnInbound = std::function<void(int fd)>;
  using OnLost = std::function<void(std::string why)>;

  static std::shared_ptr<RelayLink> open(boost::asio::io_context& io, HostPort allocation, Secret secret,
                                         OnInbound on_inbound, OnLost on_lost);
  RelayLink(boost::asio::io_context& io, HostPort allocation, Secret secret, OnInbound on_inbound, OnLost on_lost);

  // True once the relay accepted the control connection's greeting (sent).
  [[nodiscard]] bool connected() const { return m_connected; }
  [[nodiscard]] const HostPort& allocation() const { return m_allocation; }
  [[nodiscard]] std::uint64_t legs_opened() const { return m_legs; }
  // Closes the control connection; on_lost is not called. Idempotent.
  void close();

 private:
  void start();
  void read_frame();
  void keepalive();
  void open_leg(const Secret& token);
  void lose(std::string why);

  boost::asio::io_context& m_io;
  HostPort m_allocation;
  Secret m_secret;
  OnInbound m_on_inbound;
  OnLost m_on_lost;
  boost::asio::ip::tcp::socket m_control;
  boost::asio::steady_timer m_keepalive;
  std::chrono::steady_clock::time_point m_heard{};
  std::array<std::uint8_t, 1 + kSecretBytes> m_frame{};
  std::array<std::uint8_t, kMagicBytes + kSecretBytes> m_greeting{};
  std::array<std::uint8_t, 1> m_ping{kFrameKeepalive};
  // Legs connecting at once (each holds a socket until it is handed over).
  static constexpr std::size_t kMaxLegsInFlight = 64;
  std::shared_ptr<std::size_t> m_legs_in_flight = std::make_shared<std::size_t>(0);
  bool m_ping_writing = false;
  bool m_connected = false;
  bool m_closed = false;
  std::uint64_t m_legs = 0;
};

}  // namespace p2pd::relay
