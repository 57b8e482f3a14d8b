#include "daemon/net/peer_connections.hpp"

#include "common/grpc_fd_peer.hpp"

namespace p2pd::net {

void PeerConnections::add(int fd, ConnectedPeer peer) {
  std::lock_guard lock(m_mutex);
  m_by_fd[fd] = std::move(peer);
}

std::optional<ConnectedPeer> PeerConnections::find(std::string_view grpc_peer) const {
  const auto fd = fd_of_grpc_peer(grpc_peer);
  if (!fd) return std::nullopt;
  std::lock_guard lock(m_mutex);
  auto it = m_by_fd.find(*fd);
  if (it == m_by_fd.end()) return std::nullopt;
  return it->second;
}

}  // namespace p2pd::net
