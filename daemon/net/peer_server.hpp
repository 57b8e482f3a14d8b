#pragma once
// The peer RPC endpoint on --listen (TCP). Later protocols register their
// handlers here; for now it answers Ping: who is at this address, and where
// the caller is seen from.

#include <chrono>
#include <memory>

#include "common/host_port.hpp"
#include "common/node_id.hpp"
#include "common/result.hpp"

namespace grpc {
class Server;
}

namespace p2pd::net {

class PeerService;

// Bounded input: no single peer message may exceed this (DESIGN.md, "every
// peer input is validated with size limits").
inline constexpr int kMaxPeerMessageBytes = 4 << 20;

class PeerServer {
 public:
  static Result<std::unique_ptr<PeerServer>> start(const HostPort& listen, const NodeId& self);
  ~PeerServer();
  PeerServer(const PeerServer&) = delete;
  PeerServer& operator=(const PeerServer&) = delete;

  // The address actually bound (port 0 resolved).
  [[nodiscard]] const HostPort& bound() const { return m_bound; }
  void shutdown(std::chrono::milliseconds grace);

 private:
  PeerServer() = default;
  HostPort m_bound;
  std::unique_ptr<PeerService> m_service;
  std::unique_ptr<grpc::Server> m_server;
};

// "ipv4:127.0.0.1:5000" / "ipv6:%5B::1%5D:5000" (gRPC's peer strings) to
// HOST:PORT; nullopt for anything else.
std::optional<HostPort> host_port_from_grpc_peer(std::string_view peer);

}  // namespace p2pd::net
