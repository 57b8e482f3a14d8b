#pragma once
// Carries bytes between a TLS connection to a peer and a plaintext local
// socket that gRPC reads and writes (a socketpair end, or the loopback
// connection of the CONNECT proxy). Each direction has one 16 KiB buffer
// (one TLS record): a slow reader stops the other side's reads instead of
// growing a queue. Either side ending ends both, and so does a write that
// stays blocked for `write_stall_limit`: while one direction waits on a
// write, its side is not read, so without the limit a peer that stops
// reading (or a gRPC that let go) would hold the tunnel open for ever.

#include <array>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace p2pd::tls {

using Socket = boost::asio::generic::stream_protocol::socket;
using SecureStream = boost::asio::ssl::stream<Socket>;

class Tunnel : public std::enable_shared_from_this<Tunnel> {
 public:
  // `on_closed` runs once, on the stream's executor, when the tunnel ends.
  static std::shared_ptr<Tunnel> start(std::shared_ptr<SecureStream> secure, Socket plain,
                                       std::chrono::milliseconds write_stall_limit, std::function<void()> on_closed);
  Tunnel(std::shared_ptr<SecureStream> secure, Socket plain, std::chrono::milliseconds write_stall_limit,
         std::function<void()> on_closed);
  // Ends it now (on the stream's executor).
  void close();

 private:
  static constexpr std::size_t kBufferBytes = 16 * 1024;
  void read_secure();
  void read_plain();
  // Arms `timer` for a write about to start: unless disarm() comes first,
  // the tunnel ends when it fires.
  void arm(boost::asio::steady_timer& timer, std::uint64_t& writes);
  static void disarm(boost::asio::steady_timer& timer, std::uint64_t& writes);

  std::shared_ptr<SecureStream> m_secure;
  Socket m_plain;
  std::chrono::milliseconds m_write_stall_limit;
  std::function<void()> m_on_closed;
  // One per direction; the counters tell a stale expiry (one already
  // queued when its write finished) from the current write's.
  boost::asio::steady_timer m_to_plain_stall;
  boost::asio::steady_timer m_to_peer_stall;
  std::uint64_t m_to_plain_writes = 0;
  std::uint64_t m_to_peer_writes = 0;
  std::array<char, kBufferBytes> m_from_peer{};
  std::array<char, kBufferBytes> m_to_peer{};
  bool m_closed = false;
};

}  // namespace p2pd::tls
