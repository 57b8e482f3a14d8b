#pragma once
// Who is on each connection the peer server serves. gRPC sees only the
// plaintext end of a socketpair ("fd:N", tls/secure_transport.hpp); this is
// where the id the peer proved in the TLS handshake, and the address it
// came from, are looked up. Handlers check every node id a message claims
// against the proven one (peer_server.cpp).

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>

#include "common/host_port.hpp"
#include "common/node_id.hpp"

namespace p2pd::net {

struct ConnectedPeer {
  NodeId id;                              // proven by the peer's key
  std::optional<HostPort> accepted_from;  // set for connections accepted on the peer port
};

class PeerConnections {
 public:
  // Registers `fd` (the end gRPC gets) before gRPC sees it; the number
  // returned identifies this registration for remove().
  std::uint64_t add(int fd, ConnectedPeer peer);
  // The connection ended. Only the registration `serial` goes: by now the
  // descriptor may name a newer connection.
  void remove(int fd, std::uint64_t serial);
  // By gRPC's peer string for the call ("fd:N").
  [[nodiscard]] std::optional<ConnectedPeer> find(std::string_view grpc_peer) const;
  [[nodiscard]] std::size_t size() const;

 private:
  struct Entry {
    ConnectedPeer peer;
    std::uint64_t serial = 0;
  };
  mutable std::mutex m_mutex;
  std::map<int, Entry> m_by_fd;
  std::uint64_t m_next_serial = 1;
};

}  // namespace p2pd::net
