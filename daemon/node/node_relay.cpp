// Relays (daemon/relay): a reachable node relays for unreachable ones, and
// an unreachable node (reachability private) reserves a port on a reachable
// peer and announces that port as its address, so every peer, and the Chord
// and Raft code that only knows addresses, reaches it as any other node.

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/log.hpp"
#include "daemon/node/node.hpp"

namespace p2pd::node {

static_assert(relay::kSecretBytes == net::kRelaySecretBytes);

void Node::start_relay() {
  if (m_config.relay_max_reservations == 0) return;
  relay::RelayLimits limits;
  limits.max_reservations = m_config.relay_max_reservations;
  limits.max_circuits = m_config.relay_max_circuits;
  limits.max_rate_bytes_per_s = static_cast<std::uint64_t>(m_config.relay_max_rate_mib) << 20;
  // Allocations listen where the peer port does, so they are reachable
  // wherever it is.
  m_relay_server = std::make_unique<relay::RelayServer>(m_listen.host.empty() ? "0.0.0.0" : m_listen.host, limits);
}

void Node::on_relay_reserve(const NodeId& caller, const std::string& caller_ip,
                            std::function<void(Result<net::RelayGrant>)> done) {
  boost::asio::post(m_io, [this, caller, caller_ip, done = std::move(done)]() mutable {
    if (m_stopping || m_relay_stopped) {
      done(make_error(ErrorCode::unavailable, "this node is shutting down"));
      return;
    }
    if (!m_relay_server) {
      done(make_error(ErrorCode::unavailable, "this node does not relay (--relay-max-reservations 0)"));
      return;
    }
    // A relay nobody can call is no use; one whose reachability is not yet
    // known is tried (a pool's first node learns it only from later peers).
    if (m_reachability.state() == nat::Reachability::private_ || m_relay_link) {
      done(make_error(ErrorCode::unavailable, "this node is not reachable itself"));
      return;
    }
    // Its allocations would be ports the router does not forward.
    if (m_port_mapper && m_port_mapper->mapping()) {
      done(make_error(ErrorCode::unavailable, "this node is reachable only through one forwarded port"));
      return;
    }
    // The host peers call: --advertise's, else the address peers agree they
    // see us at, else the announced one.
    std::string host = m_direct_addr.host;
    if (!m_config.advertise) {
      const auto adopted = m_observed.adopted(m_ticks);
      if (!adopted.empty()) host = adopted.front();
    }
    m_relay_server->reserve(
        caller, caller_ip, host, [done = std::move(done)](Result<relay::RelayAllocation> allocation) {
          if (!allocation) return done(allocation.error());
          done(net::RelayGrant{
              allocation->addr.to_string(),
              std::string(reinterpret_cast<const char*>(allocation->secret.data()), allocation->secret.size())});
        });
  });
}

void Node::note_peer_reachability(const HostPort& peer, const std::string& reachability) {
  if (reachability.empty()) return;  // the peer did not say
  if (!m_peer_reachability.contains(peer.to_string()) && m_peer_reachability.size() >= kMaxPeersRemembered) {
    m_peer_reachability.erase(m_peer_reachability.begin());
  }
  m_peer_reachability[peer.to_string()] = reachability;
}

bool Node::announced_through_relay() const {
  return m_relay_addr && m_chord_self.addr == m_relay_addr->to_string();
}

std::vector<HostPort> Node::relay_candidates() const {
  // Peers that said they are reachable first, then those that did not say;
  // never one that said it is not, nor one reached through a relay itself.
  std::vector<HostPort> reachable;
  std::vector<HostPort> unknown;
  auto consider = [&](const HostPort& addr) {
    const std::string key = addr.to_string();
    if (std::find(reachable.begin(), reachable.end(), addr) != reachable.end() ||
        std::find(unknown.begin(), unknown.end(), addr) != unknown.end()) {
      return;
    }
    auto said = m_peer_reachability.find(key);
    if (said != m_peer_reachability.end() && said->second == "private") return;
    (said != m_peer_reachability.end() && said->second == "public" ? reachable : unknown).push_back(addr);
  };
  for (const auto& peer : m_bootstrap.peers()) {
    if (peer.node_id) consider(peer.addr);
  }
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [id, seen] : m_peers_seen) {
    if (seen.relayed || now - seen.last_seen > kLearnerFreshness) continue;
    if (auto addr = parse_host_port(seen.addr, false)) consider(*addr);
  }
  reachable.insert(reachable.end(), unknown.begin(), unknown.end());
  return reachable;
}

void Node::tick_relay() {
  if (m_config.advertise || m_leaving || m_relay_stopped || !m_peer_client) return;
  if (m_reachability.state() != nat::Reachability::private_ && !m_relay_link) return;
  if (m_relay_link || m_relay_reserving || m_ticks < m_next_relay_tick) return;
  auto candidates = relay_candidates();
  // The relay we had first: it gives our port back, so the address peers
  // know stays right.
  if (m_relay_peer && m_relay_failures < 3) {
    std::erase(candidates, *m_relay_peer);
    candidates.insert(candidates.begin(), *m_relay_peer);
  }
  if (candidates.empty()) return;
  reserve_relay_at(candidates[m_relay_peer ? 0 : m_relay_failures % candidates.size()]);
}

void Node::reserve_relay_at(const HostPort& peer) {
  m_relay_reserving = true;
  log::debug(log::Category::net, "asking {} to relay for us", peer.to_string());
  m_peer_client->reserve_relay(peer, kRelayReserveTimeout, [this, peer](Result<net::RelayReservation> reserved) {
    m_relay_reserving = false;
    if (m_stopping || m_leaving || m_relay_stopped) return;
    if (!reserved) {
      ++m_relay_failures;
      const std::uint64_t wait =
          std::min(kRelayMaxRetryTicks, kRelayRetryTicks << std::min<std::uint32_t>(m_relay_failures, 6));
      m_next_relay_tick = m_ticks + wait;
      m_relay_error = fmt::format("{}: {}", peer.to_string(), reserved.error().message);
      if (m_relay_peer == peer && m_relay_failures >= 3) m_relay_peer.reset();  // look elsewhere
      log::warn(log::Category::net, "no relay at {} ({}); trying again in {} s", peer.to_string(),
                reserved.error().message, wait / 20);
      return;
    }
    relay::Secret secret{};
    std::memcpy(secret.data(), reserved->secret.data(), secret.size());
    if (m_relay_addr && *m_relay_addr != reserved->addr && announced_through_relay()) {
      // Peers know us by the old allocation; they cannot call us until we
      // rejoin. Rare: the relay we had is gone for good.
      log::warn(log::Category::net,
                "relay address changed from {} to {}; peers reach this node again after it restarts",
                m_relay_addr->to_string(), reserved->addr.to_string());
    }
    m_relay_peer = peer;
    if (!announced_through_relay()) m_relay_addr = reserved->addr;
    m_relay_failures = 0;
    m_relay_error.clear();
    m_relay_link = relay::RelayLink::open(
        m_io, reserved->addr, secret,
        [this](int fd) {
          if (m_peer_server && !m_relay_stopped) {
            m_peer_server->add_connection(fd);
          } else {
            ::close(fd);
          }
        },
        [this](std::string why) { on_relay_lost(std::move(why)); });
    log::info(log::Category::net, "relay: peers reach this node through {} at {}", peer.to_string(),
              reserved->addr.to_string());
    trace_local(fmt::format("relay: reserved at {}", peer.to_string()));
    maybe_join();
  });
}

void Node::on_relay_lost(std::string why) {
  log::warn(log::Category::net, "relay: lost the control connection to {} ({}); reserving again",
            m_relay_addr ? m_relay_addr->to_string() : std::string("?"), why);
  m_relay_link.reset();
  ++m_relay_failures;
  m_relay_error = std::move(why);
  m_next_relay_tick = m_ticks + kRelayRetryTicks;
}

void Node::announce_as(std::string addr) {
  // The overlay is rebuilt with the new address (nothing has been sent yet:
  // we are not in a ring). Operations asked of the old one (a p2pctl lookup
  // before the join) would never finish: they are answered now.
  m_chord_self.addr = std::move(addr);
  m_overlay = std::make_unique<chord::Overlay>(m_chord_self, chord::OverlayConfig{});
  auto pending = std::exchange(m_operations, {});
  for (auto& [id, done] : pending) {
    chord::OperationResult result;
    result.operation_id = id;
    result.error_code = ErrorCode::unavailable;
    result.error = "this node is joining the pool; try again";
    done(std::move(result));
  }
}

void Node::maybe_join() {
  if (!m_join_through || m_ring_started || m_leaving || !m_overlay) return;
  const nat::Reachability reachability = m_reachability.state();
  const std::uint64_t waited = m_ticks - m_join_wait_since;
  // An operator's --advertise is believed; otherwise wait for a verdict.
  if (!m_config.advertise && reachability == nat::Reachability::unknown && waited < kJoinVerdictWaitTicks) return;
  if (!m_config.advertise && reachability == nat::Reachability::public_ && m_port_mapper && m_port_mapper->mapping()) {
    // Reachable through the port the router forwards: announce what the
    // dial-back reached, the address peers see us at with that port (not
    // the address the gateway claims: any LAN host can answer for it).
    const auto adopted = m_observed.adopted(m_ticks);
    const HostPort& mapped = m_port_mapper->mapping()->external;
    announce_as(HostPort{adopted.empty() ? mapped.host : adopted.front(), mapped.port}.to_string());
    log::info(log::Category::chord, "reachable through the port mapping: announcing {}", m_chord_self.addr);
  }
  if (!m_config.advertise && reachability == nat::Reachability::private_) {
    if (!m_relay_addr) {
      if (waited < kJoinRelayWaitTicks) return;
      log::warn(log::Category::net,
                "joining without a relay: no peer would relay for us ({}); peers cannot call this node",
                m_relay_error.empty() ? "no peer asked yet" : m_relay_error);
    } else {
      announce_as(m_relay_addr->to_string());
      if (m_peer_server) m_peer_server->set_relayed(true);
      log::info(log::Category::chord, "unreachable directly: announcing the relay address {}", m_chord_self.addr);
    }
  }
  m_ring_started = true;
  log::info(log::Category::chord, "joining the ring through {}", m_join_through->to_string());
  m_overlay->join(m_join_through->to_string());
  pump_chord();
}

}  // namespace p2pd::node
