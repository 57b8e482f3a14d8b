// The Chord overlay core bound to gRPC (DESIGN.md, daemon/node): its outbox
// becomes Chord.Call RPCs, their replies and incoming calls go back into it,
// and control requests (ring, lookup, peers, put, get, leave) become its
// operations. Everything here runs on the io thread.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include <boost/asio/post.hpp>

#include "common/log.hpp"
#include "daemon/node/node.hpp"

namespace p2pd::node {
namespace {

// The source address the kernel would use to reach the outside: the
// interface a wildcard listener is most likely reached on. connect() on a
// UDP socket sends nothing. Empty when there is no route.
std::string primary_local_address() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(9);
  ::inet_pton(AF_INET, "192.0.2.1", &remote.sin_addr);  // TEST-NET-1 (RFC 5737): never routed for real
  std::string out;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&remote), sizeof remote) == 0) {
    sockaddr_in local{};
    socklen_t length = sizeof local;
    char text[INET_ADDRSTRLEN] = {};
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == 0 &&
        ::inet_ntop(AF_INET, &local.sin_addr, text, sizeof text) != nullptr) {
      out = text;
    }
  }
  ::close(fd);
  return out;
}

control::NodeRef ref(const chord::Peer& peer) {
  return control::NodeRef{peer.id.hex(), peer.addr};
}

Error operation_error(const chord::OperationResult& result) {
  return Error{result.error_code, result.error};
}

}  // namespace

void Node::start_chord() {
  // The address other peers reach us at: --advertise, else the bound host,
  // else (a wildcard listener) the primary interface's address.
  HostPort advertised = m_config.advertise.value_or(m_listen);
  if (!m_config.advertise && (m_listen.host == "0.0.0.0" || m_listen.host == "::" || m_listen.host.empty())) {
    const std::string primary = primary_local_address();
    advertised.host = primary.empty() ? "127.0.0.1" : primary;
    log::info(log::Category::chord,
              "listening on a wildcard address: announcing {} to peers (set --advertise to "
              "override)",
              HostPort{advertised.host, m_listen.port}.to_string());
    advertised.port = m_listen.port;
  }
  m_direct_addr = advertised;
  m_chord_self = chord::Peer{m_identity.id, advertised.to_string()};
  m_overlay = std::make_unique<chord::Overlay>(m_chord_self, chord::OverlayConfig{});
  if (m_config.bootstrap.empty()) {
    m_overlay->create();
    m_ring_started = true;
    log::info(log::Category::chord, "started a new ring as {} at {}", m_identity.id.short_hex(), m_chord_self.addr);
    trace_local("started a new ring");
  }
  // Otherwise the ring is joined through the first bootstrap peer that
  // answers a ping (on_bootstrap_reply).
}

void Node::on_chord_message(net::ChordInbound inbound, std::function<void(std::optional<chord::Message>)> done) {
  boost::asio::post(m_io, [this, inbound = std::move(inbound), done = std::move(done)]() mutable {
    if (!m_overlay || m_stopping) {
      done(std::nullopt);
      return;
    }
    note_peer(inbound.from.id, inbound.from.addr, inbound.executor, inbound.relayed);
    auto reply = m_overlay->receive(inbound.from, inbound.message);
    done(std::move(reply));
    pump_chord();
  });
}

void Node::pump_chord() {
  if (!m_overlay) return;
  for (auto& out : m_overlay->take_outbox()) send_chord(std::move(out));
  for (auto& result : m_overlay->take_results()) {
    auto it = m_operations.find(result.operation_id);
    if (it == m_operations.end()) continue;
    auto done = std::move(it->second);
    m_operations.erase(it);
    done(std::move(result));
  }
  note_ring_changes();
}

std::size_t Node::peers_heard_lately() const {
  const auto now = std::chrono::steady_clock::now();
  return static_cast<std::size_t>(std::count_if(m_peers_seen.begin(), m_peers_seen.end(), [&](const auto& entry) {
    return now - entry.second.last_seen < kLearnerFreshness;
  }));
}

void Node::note_ring_changes() {
  // The ring as this node sees it changes when a neighbour joins, leaves or
  // fails: each change is logged and is an event of the pool's trace.
  const auto& ring = m_overlay->ring();
  std::optional<chord::Peer> successor;
  if (!ring.successors().empty() && ring.successors().front().id != m_identity.id)
    successor = ring.successors().front();
  std::optional<chord::Peer> predecessor = ring.predecessor();
  if (predecessor && predecessor->id == m_identity.id) predecessor.reset();
  auto note = [&](std::string_view role, const std::optional<chord::Peer>& now, std::optional<NodeId>& logged) {
    const std::optional<NodeId> id = now ? std::optional<NodeId>(now->id) : std::nullopt;
    if (id == logged) return;
    logged = id;
    log::info(log::Category::chord, "ring: {} {}", role,
              now ? fmt::format("{} at {}", now->id.short_hex(), now->addr) : "none");
    trace_local(fmt::format("ring: {} {}", role, now ? now->id.short_hex() : "none"));
  };
  note("successor", successor, m_logged_successor);
  note("predecessor", predecessor, m_logged_predecessor);
}

std::string Node::traced_chord_send_name(const chord::Outgoing& out) {
  // Routine traffic (lookups, stabilization rounds, key sync) would flood
  // the trace; what changes the ring is recorded: the first notify to a new
  // successor (it makes us its predecessor: a join, §4.6) and a departure.
  if (std::holds_alternative<chord::Notify>(out.message)) {
    if (out.to_addr == m_notified_successor) return {};
    m_notified_successor = out.to_addr;
    const auto& successors = m_overlay->ring().successors();
    for (const auto& peer : successors) {
      if (peer.addr == out.to_addr) return fmt::format("notify successor {}", peer.id.short_hex());
    }
    return fmt::format("notify successor at {}", out.to_addr);
  }
  if (std::holds_alternative<chord::Leaving>(out.message)) return fmt::format("tell {} this node leaves", out.to_addr);
  return {};
}

void Node::send_chord(chord::Outgoing out) {
  auto to = parse_host_port(out.to_addr, false);
  if (!to) {
    log::debug(log::Category::chord, "not sending to '{}': not HOST:PORT", out.to_addr);
    return;
  }
  const std::uint64_t request_id = chord::request_id_of(out.message);
  auto request = net::encode_request(m_chord_self, std::string(exec::to_string(m_executor.kind)), out.message);
  request.set_relayed(announced_through_relay());
  std::string stamp;
  if (m_tracer) {
    if (const std::string name = traced_chord_send_name(out); !name.empty()) stamp = m_tracer->on_send(name);
  }
  ++m_chord_calls_in_flight;
  m_peer_client->chord_call(
      *to, request, kChordCallTimeout,
      [this, addr = std::move(out.to_addr), request_id](Result<proto::ChordReply> reply) {
        --m_chord_calls_in_flight;
        if (!m_overlay || m_stopping) return;
        if (!reply) {
          log::trace(log::Category::chord, "{}", reply.error().message);
          return;
        }
        auto answer = net::decode_reply(*reply, request_id);
        if (!answer) {
          log::debug(log::Category::chord, "ignored a reply from {}: {}", addr, answer.error().message);
          return;
        }
        note_peer(answer->from, addr, answer->executor, answer->relayed);
        if (answer->message) {
          m_overlay->receive(chord::Peer{answer->from, addr}, *answer->message);
          pump_chord();
        }
      },
      stamp);
}

void Node::note_peer(const NodeId& id, const std::string& addr, const std::string& executor,
                     std::optional<bool> relayed) {
  if (id == m_identity.id) return;
  if (!m_peers_seen.contains(id) && m_peers_seen.size() >= kMaxPeersRemembered) {
    auto oldest = std::min_element(m_peers_seen.begin(), m_peers_seen.end(), [](const auto& a, const auto& b) {
      return a.second.last_seen < b.second.last_seen;
    });
    m_peers_seen.erase(oldest);
  }
  auto& seen = m_peers_seen[id];
  if (seen.addr != addr) seen.relayed = false;  // a new address: how it is reached is news too
  seen.addr = addr;
  if (relayed) seen.relayed = *relayed;
  if (executor == "cuda" || executor == "cpu") seen.executor = executor;
  seen.last_seen = std::chrono::steady_clock::now();
}

void Node::run_operation(std::uint64_t operation_id, std::function<void(chord::OperationResult)> done) {
  m_operations.emplace(operation_id, std::move(done));
  pump_chord();  // the result may be there already (a local answer)
}

void Node::get_ring(std::function<void(control::RingView)> done) {
  boost::asio::post(m_io, [this, done = std::move(done)] {
    control::RingView view;
    view.self = control::NodeRef{m_identity.id.hex(), m_chord_self.addr};
    if (m_overlay) {
      const auto& ring = m_overlay->ring();
      view.member = ring.is_member();
      if (ring.predecessor()) view.predecessor = ref(*ring.predecessor());
      for (const auto& s : ring.successors()) view.successors.push_back(ref(s));
      // Consecutive fingers naming one node are one entry: 160 mostly equal
      // rows tell a user nothing.
      for (const auto& f : ring.fingers()) {
        if (!view.fingers.empty() && view.fingers.back().node.node_id == f.node.id.hex()) continue;
        view.fingers.push_back(control::FingerView{f.start.hex(), ref(f.node)});
      }
    }
    done(std::move(view));
  });
}

void Node::get_peers(std::function<void(std::vector<control::PeerView>)> done) {
  boost::asio::post(m_io, [this, done = std::move(done)] {
    std::vector<control::PeerView> peers;
    const auto now = std::chrono::steady_clock::now();
    auto entry = [&](const NodeId& id, const std::string& addr) -> control::PeerView& {
      for (auto& p : peers) {
        if (p.node_id == id.hex()) return p;
      }
      control::PeerView view;
      view.node_id = id.hex();
      view.addr = addr;
      view.connection = "direct";
      view.executor = "unknown";
      if (auto it = m_peers_seen.find(id); it != m_peers_seen.end()) {
        // The connection manager's choice: a punched path over the relay.
        if (it->second.relayed) {
          const auto parsed = parse_host_port(it->second.addr, false);
          view.connection = parsed && m_peer_client && m_peer_client->has_direct(*parsed) ? "punched" : "relayed";
        }
        if (!it->second.executor.empty()) view.executor = it->second.executor;
        view.last_seen_s = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::seconds>(now - it->second.last_seen).count());
      }
      peers.push_back(std::move(view));
      return peers.back();
    };
    auto add_role = [](control::PeerView& view, const char* role) {
      if (std::find(view.roles.begin(), view.roles.end(), role) == view.roles.end()) view.roles.emplace_back(role);
    };
    if (m_overlay) {
      const auto& ring = m_overlay->ring();
      if (ring.predecessor() && ring.predecessor()->id != m_identity.id) {
        add_role(entry(ring.predecessor()->id, ring.predecessor()->addr), "predecessor");
      }
      for (const auto& s : ring.successors()) {
        if (s.id != m_identity.id) add_role(entry(s.id, s.addr), "successor");
      }
      for (const auto& f : ring.fingers()) add_role(entry(f.node.id, f.node.addr), "finger");
    }
    // Nodes met lately that the ring does not route through (yet).
    constexpr auto kRecent = std::chrono::minutes(10);
    for (const auto& [id, seen] : m_peers_seen) {
      if (now - seen.last_seen <= kRecent) entry(id, seen.addr);
    }
    done(std::move(peers));
  });
}

void Node::lookup(std::string key, std::function<void(Result<control::LookupView>)> done) {
  boost::asio::post(m_io, [this, key = std::move(key), done = std::move(done)]() mutable {
    if (!m_overlay) return done(make_error(ErrorCode::unavailable, "the ring is not started yet"));
    run_operation(m_overlay->lookup(NodeId::of_key(key)), [done = std::move(done)](chord::OperationResult r) {
      if (!r.ok) return done(operation_error(r));
      control::LookupView view;
      view.key = r.key.hex();
      view.owner = ref(r.holders.front());
      view.hops = static_cast<std::uint32_t>(r.path.size());
      for (const auto& p : r.path) view.path.push_back(p.id.hex());
      for (std::size_t i = 1; i < r.holders.size(); ++i) view.replicas.push_back(ref(r.holders[i]));
      done(std::move(view));
    });
  });
}

void Node::put(std::string key, std::string value, std::function<void(Result<control::PutView>)> done) {
  boost::asio::post(m_io, [this, key = std::move(key), value = std::move(value), done = std::move(done)]() mutable {
    if (!m_overlay) return done(make_error(ErrorCode::unavailable, "the ring is not started yet"));
    if (value.size() > chord::kMaxValueBytes) {
      return done(make_error(ErrorCode::invalid_argument, "value of {} bytes is over the limit of {} bytes",
                             value.size(), chord::kMaxValueBytes));
    }
    run_operation(m_overlay->put(NodeId::of_key(key), std::move(value)),
                  [done = std::move(done)](chord::OperationResult r) {
                    if (!r.ok) return done(operation_error(r));
                    control::PutView view;
                    view.key = r.key.hex();
                    view.version = r.version;
                    view.copies = static_cast<std::uint32_t>(r.copies);
                    for (const auto& h : r.holders) view.holders.push_back(ref(h));
                    done(std::move(view));
                  });
  });
}

void Node::get(std::string key, std::function<void(Result<control::GetView>)> done) {
  boost::asio::post(m_io, [this, key = std::move(key), done = std::move(done)]() mutable {
    if (!m_overlay) return done(make_error(ErrorCode::unavailable, "the ring is not started yet"));
    run_operation(m_overlay->get(NodeId::of_key(key)), [done = std::move(done)](chord::OperationResult r) {
      if (!r.ok) return done(operation_error(r));
      done(control::GetView{r.key.hex(), std::move(r.value), r.version});
    });
  });
}

void Node::leave(std::function<void(Result<control::LeaveView>)> done) {
  boost::asio::post(m_io, [this, done = std::move(done)]() mutable { begin_leave(std::move(done)); });
}

void Node::begin_leave(std::function<void(Result<control::LeaveView>)> done) {
  if (done && m_left) {
    done(m_leave_view);  // the hand-over is over; we are on our way out
    return;
  }
  if (done) m_leave_waiters.push_back(std::move(done));
  if (m_leaving) return;
  m_leaving = true;
  m_service.stopping("leaving the pool");
  if (m_overlay) {
    const bool was_member = m_overlay->ring().is_member();
    const auto handover = m_overlay->leave();  // also stops a join in progress
    if (handover.successor) m_leave_view.successor = handover.successor->addr;
    m_leave_view.keys_handed_over = static_cast<std::uint32_t>(handover.keys);
    if (was_member)
      log::info(log::Category::chord, "leaving the ring: handing {} keys to {}", handover.keys,
                handover.successor ? handover.successor->addr : std::string("nobody (alone)"));
    pump_chord();
  }
  hand_over_leadership();
  m_leave_deadline = std::chrono::steady_clock::now() + kLeaveTimeout;
  check_leave_done();
}

void Node::check_leave_done() {
  if (!m_leaving || m_left) return;
  // Leaving waits for the Chord hand-over to be sent and, on the Raft
  // leader, for leadership to pass to another voter.
  const bool still_leading = m_raft && !m_raft_failed && m_raft->role() == raft::Role::leader;
  const bool sent = m_chord_calls_in_flight == 0 && !still_leading && !m_leave_notice_pending;
  if (!sent && std::chrono::steady_clock::now() < m_leave_deadline) return;
  if (!sent) {
    log::warn(log::Category::chord, "leaving with {} hand-over calls unanswered{} after {} s", m_chord_calls_in_flight,
              still_leading ? " and Raft leadership not handed over" : "", kLeaveTimeout.count() / 1000);
  }
  m_left = true;
  for (auto& waiter : std::exchange(m_leave_waiters, {})) waiter(m_leave_view);
  request_stop();
}

}  // namespace p2pd::node
