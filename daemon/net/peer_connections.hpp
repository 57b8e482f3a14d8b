#pragma once
// Who is on each connection the peer server serves. gRPC sees only the
// plaintext end of a socketpair ("fd:N", tls/secure_transport.hpp); this is
// where the id the peer proved in the TLS handshake, and the address it
// came from, are looked up. Handlers check every node id a message claims
// against the proven one (peer_server.cpp).

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
  // Registers `fd` (the end gRPC gets) before gRPC sees it, replacing what
  // an earlier connection with the same descriptor number left. Entries are
  // never removed when a connection ends: gRPC may still be reading what
  // the peer sent before it left, and its calls must still be scored and
  // checked. A lookup only comes from a call on a live descriptor, whose
  // registration is the newest, and there are no more entries than
  // descriptor numbers.
  void add(int fd, ConnectedPeer peer);
  // By gRPC's peer string for the call ("fd:N").
  [[nodiscard]] std::optional<ConnectedPeer> find(std::string_view grpc_peer) const;

 private:
  mutable std::mutex m_mutex;
  std::map<int, ConnectedPeer> m_by_fd;
};

}  // namespace p2pd::net
