#include "daemon/net/peer_connections.hpp"

#include <charconv>

namespace p2pd::net {

void PeerConnections::add(int fd, ConnectedPeer peer) {
  std::lock_guard lock(m_mutex);
  m_by_fd[fd] = std::move(peer);
}

std::optional<ConnectedPeer> PeerConnections::find(std::string_view grpc_peer) const {
  constexpr std::string_view kPrefix = "fd:";
  if (grpc_peer.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  grpc_peer.remove_prefix(kPrefix.size());
  int fd = -1;
  const auto [end, ec] = std::from_chars(grpc_peer.data(), grpc_peer.data() + grpc_peer.size(), fd);
  if (ec != std::errc() || end != grpc_peer.data() + grpc_peer.size()) return std::nullopt;
  std::lock_guard lock(m_mutex);
  auto it = m_by_fd.find(fd);
  if (it == m_by_fd.end()) return std::nullopt;
  return it->second;
}

std::size_t PeerConnections::size() const {
  std::lock_guard lock(m_mutex);
  return m_by_fd.size();
}

}  // namespace p2pd::net
