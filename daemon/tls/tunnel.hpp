#pragma once
// Carries bytes between a TLS connection to a peer and a plaintext local
// socket that gRPC reads and writes (a socketpair end, or the loopback
// connection of the CONNECT proxy). Each direction has one 16 KiB buffer
// (one TLS record): a slow reader stops the other side's reads instead of
// growing a queue. Either side ending ends both.

#include <array>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <functional>
#include <memory>

namespace p2pd::tls {

using Socket = boost::asio::generic::stream_protocol::socket;
using SecureStream = boost::asio::ssl::stream<Socket>;

class Tunnel : public std::enable_shared_from_this<Tunnel> {
 public:
  // `on_closed` runs once, on the stream's executor, when the tunnel ends.
  static std::shared_ptr<Tunnel> start(std::shared_ptr<SecureStream> secure, Socket plain,
                                       std::function<void()> on_closed);
  Tunnel(std::shared_ptr<SecureStream> secure, Socket plain, std::function<void()> on_closed);
  // Ends it now (on the stream's executor).
  void close();

 private:
  static constexpr std::size_t kBufferBytes = 16 * 1024;
  void read_secure();
  void read_plain();

  std::shared_ptr<SecureStream> m_secure;
  Socket m_plain;
  std::function<void()> m_on_closed;
  std::array<char, kBufferBytes> m_from_peer{};
  std::array<char, kBufferBytes> m_to_peer{};
  bool m_closed = false;
};

}  // namespace p2pd::tls
