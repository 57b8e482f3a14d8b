#pragma once
// Peers' TLS for tests: a transport with a fresh key (tls/), a loopback
// port that serves an in-process gRPC server through it as the daemon's
// peer port does, and channel arguments that call through it.

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "common/host_port.hpp"
#include "daemon/tls/secure_transport.hpp"

namespace grpc {
class Channel;
class Server;
}  // namespace grpc

namespace p2pd::test {

// A new Ed25519 node key, PKCS#8 PEM.
std::string new_node_key_pem();
// A transport for a new node; with `pool`, it proves that pool's secret.
std::unique_ptr<tls::SecureTransport> make_transport(
    const tls::PoolSecret* pool = nullptr,
    std::chrono::milliseconds write_stall_limit = tls::SecureTransport::kWriteStallLimit);
// A channel to the peer at `peer` (HOST:PORT) through `transport`.
std::shared_ptr<grpc::Channel> secure_channel(tls::SecureTransport& transport, const std::string& peer);

// Accepts on 127.0.0.1 and hands each connection, after the handshake,
// to `server` (built without a listening port). Destroy it, and shut the
// transport down, before the server.
class SecurePeerPort {
 public:
  SecurePeerPort(grpc::Server& server, tls::SecureTransport& transport);
  ~SecurePeerPort();
  SecurePeerPort(const SecurePeerPort&) = delete;
  SecurePeerPort& operator=(const SecurePeerPort&) = delete;
  [[nodiscard]] HostPort addr() const { return HostPort{"127.0.0.1", m_port}; }

 private:
  int m_listen_fd = -1;
  std::uint16_t m_port = 0;
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};

}  // namespace p2pd::test
