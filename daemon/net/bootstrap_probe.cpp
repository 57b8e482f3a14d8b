#include "daemon/net/bootstrap_probe.hpp"

#include <algorithm>

namespace p2pd::net {

BootstrapProbe::BootstrapProbe(std::vector<HostPort> peers, NodeId self) : m_self(self) {
  for (auto& addr : peers) {
    const bool duplicate =
        std::any_of(m_peers.begin(), m_peers.end(), [&](const BootstrapPeer& p) { return p.addr == addr; });
    if (duplicate) continue;
    BootstrapPeer peer;
    peer.addr = std::move(addr);
    m_peers.push_back(std::move(peer));
  }
}

BootstrapPeer* BootstrapProbe::find(const HostPort& addr) {
  for (auto& peer : m_peers) {
    if (peer.addr == addr) return &peer;
  }
  return nullptr;
}

std::vector<HostPort> BootstrapProbe::due(std::uint64_t tick) {
  std::vector<HostPort> out;
  for (auto& peer : m_peers) {
    if (peer.node_id || peer.in_flight || tick < peer.next_attempt_tick) continue;
    peer.in_flight = true;
    out.push_back(peer.addr);
  }
  return out;
}

BootstrapProbe::Verdict BootstrapProbe::on_answer(const HostPort& addr, const NodeId& id) {
  BootstrapPeer* peer = find(addr);
  if (peer == nullptr) return Verdict::unknown_peer;
  peer->in_flight = false;
  peer->node_id = id;
  return id == m_self ? Verdict::is_self : Verdict::joined;
}

bool BootstrapProbe::on_failure(const HostPort& addr, std::uint64_t tick) {
  BootstrapPeer* peer = find(addr);
  if (peer == nullptr) return false;
  peer->in_flight = false;
  ++peer->failures;
  const std::uint32_t doublings = std::min<std::uint32_t>(peer->failures - 1, 6);
  peer->next_attempt_tick = tick + std::min(kFirstRetryTicks << doublings, kMaxRetryTicks);
  return peer->failures == 1 || peer->failures % 10 == 0;
}

}  // namespace p2pd::net
