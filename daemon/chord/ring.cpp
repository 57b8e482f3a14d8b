#include "daemon/chord/ring.hpp"

#include <algorithm>
#include <type_traits>
#include <utility>

namespace p2pd::chord {
namespace {

// The reply each kind of request is answered with; anything else from the
// right peer and request id is ignored (the request then times out).
template <class Reply>
bool answers_purpose(bool join_or_lookup, bool stabilize, bool ping) {
  if constexpr (std::is_same_v<Reply, FoundSuccessor>) return join_or_lookup;
  if constexpr (std::is_same_v<Reply, Neighbors>) return stabilize;
  if constexpr (std::is_same_v<Reply, Pong>) return ping;
  return false;
}

}  // namespace

template <class Reply>
bool Ring::answers(Purpose purpose) {
  return answers_purpose<Reply>(purpose == Purpose::join_walk || purpose == Purpose::lookup_hop,
                                purpose == Purpose::stabilize_successor || purpose == Purpose::stabilize_candidate ||
                                    purpose == Purpose::join_confirm,
                                purpose == Purpose::check_predecessor);
}

Ring::Ring(Peer self, RingConfig config) : m_self(std::move(self)), m_config(config), m_fingers(NodeId::kBits) {
  if (m_config.successor_list_length == 0) m_config.successor_list_length = 1;
  if (m_config.fix_fingers_interval_ticks == 0) m_config.fix_fingers_interval_ticks = 1;
}

void Ring::create() {
  m_member = true;
  m_joining = false;
  m_successors = {m_self};
  m_predecessor.reset();
}

void Ring::join(std::string bootstrap_addr) {
  m_bootstrap = bootstrap_addr;
  m_join_via = std::move(bootstrap_addr);
  m_member = false;
  m_joining = true;
  m_next_join_attempt = m_now;
}

std::uint64_t Ring::send_request(Purpose purpose, const std::string& addr, std::optional<Peer> peer,
                                 const Message& message) {
  const std::uint64_t id = m_next_request_id++;
  m_pending.emplace(id, Pending{purpose, addr, std::move(peer), m_now + m_config.request_timeout_ticks});
  m_outbox.push_back(Outgoing{addr, message});
  set_request_id(m_outbox.back().message, id);
  return id;
}

bool Ring::has_pending(Purpose purpose) const {
  return std::any_of(m_pending.begin(), m_pending.end(), [&](const auto& p) { return p.second.purpose == purpose; });
}

void Ring::leave() {
  if (m_left) return;
  if (m_member) {
    // The successor takes over our range and the predecessor skips us; both
    // learn it now instead of after failures_before_dead timeouts.
    const Leaving leaving{m_successors};
    if (m_successors.front() != m_self) m_outbox.push_back(Outgoing{m_successors.front().addr, leaving});
    if (m_predecessor && m_predecessor->id != m_self.id && m_predecessor->addr != m_successors.front().addr) {
      m_outbox.push_back(Outgoing{m_predecessor->addr, leaving});
    }
  }
  m_left = true;
  m_member = false;
  m_joining = false;
  m_pending.clear();
  for (auto& [id, lookup] : m_lookups) {
    if (!lookup.finger) m_lookup_results.push_back(LookupResult{id, lookup.key, false, "this node is leaving", {}, {}});
  }
  m_lookups.clear();
}

void Ring::tick() {
  if (m_left) return;
  ++m_now;
  // Timeouts first, in request order.
  for (const auto& pending : take_expired(m_pending, m_now)) on_timeout(pending);

  if (m_joining && !has_pending(Purpose::join_walk) && !has_pending(Purpose::join_confirm) &&
      m_now >= m_next_join_attempt && m_join_via) {
    send_request(Purpose::join_walk, *m_join_via, std::nullopt, FindSuccessor{0, m_self.id});
  }
  if (m_member && m_now >= m_next_stabilize && !has_pending(Purpose::stabilize_successor) &&
      !has_pending(Purpose::stabilize_candidate)) {
    start_stabilize();
  }
  if (m_member && m_predecessor && m_now >= m_next_ping && !has_pending(Purpose::check_predecessor)) {
    m_next_ping = m_now + m_config.ping_interval_ticks;
    send_request(Purpose::check_predecessor, m_predecessor->addr, m_predecessor, Ping{});
  }
  if (m_member && !m_joining && m_now >= m_next_fix_fingers && !m_fixing_finger) {
    m_next_fix_fingers = m_now + m_config.fix_fingers_interval_ticks;
    fix_fingers();
  }
}

void Ring::start_stabilize() {
  m_next_stabilize = m_now + m_config.stabilize_interval_ticks;
  const Peer& successor = m_successors.front();
  if (successor == m_self) {
    // Alone (or repairing): our own predecessor is "our successor's
    // predecessor" (§4.4), which is how a ring of one grows into a ring of
    // two, and how a node that lost every successor finds its way back
    // through predecessor pointers when the join walk cannot.
    if (m_predecessor && m_predecessor->id != m_self.id) {
      send_request(Purpose::stabilize_candidate, m_predecessor->addr, m_predecessor, GetNeighbors{});
    }
    return;
  }
  send_request(Purpose::stabilize_successor, successor.addr, successor, GetNeighbors{});
}

std::optional<Message> Ring::receive(const Peer& from, const Message& message) {
  if (from.addr.empty() || from.addr.size() > kMaxAddrLength || m_left) return std::nullopt;
  return std::visit(
      [&](const auto& m) -> std::optional<Message> {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, GetNeighbors>) {
          Neighbors reply{m.request_id, m_predecessor, {}};
          if (m_member) reply.successors = m_successors;
          return reply;
        } else if constexpr (std::is_same_v<T, Ping>) {
          return Pong{m.request_id};
        } else if constexpr (std::is_same_v<T, FindSuccessor>) {
          return answer_find_successor(m);
        } else if constexpr (std::is_same_v<T, Notify>) {
          if (m_member) rectify(from);
          return std::nullopt;
        } else if constexpr (std::is_same_v<T, Leaving>) {
          if (m_member) on_leaving(from, m);
          return std::nullopt;
        } else if constexpr (std::is_same_v<T, Neighbors> || std::is_same_v<T, Pong> ||
                             std::is_same_v<T, FoundSuccessor>) {
          // Replies: only to a request we made, from the address we asked,
          // and of the kind that request is answered with.
          auto it = m_pending.find(m.request_id);
          if (it == m_pending.end() || it->second.addr != from.addr) return std::nullopt;
          if (!answers<T>(it->second.purpose)) return std::nullopt;
          Pending pending = std::move(it->second);
          m_pending.erase(it);
          if constexpr (std::is_same_v<T, Neighbors>) on_neighbors(from, pending, m);
          if constexpr (std::is_same_v<T, Pong>) on_pong(pending);
          if constexpr (std::is_same_v<T, FoundSuccessor>) on_found_successor(from, pending, m);
          return std::nullopt;
        } else {
          return std::nullopt;  // key-value messages are not the ring's
        }
      },
      message);
}

void Ring::on_leaving(const Peer& from, const Leaving& leaving) {
  const bool was_successor = m_successors.front().addr == from.addr;
  if (m_predecessor && m_predecessor->addr == from.addr) {
    // Our new predecessor will notify us once its stabilize skips the
    // leaver; until then, none (Zave: adopt no node unchecked).
    m_predecessor.reset();
    m_predecessor_failures = 0;
  }
  forget(from.addr);
  if (!was_successor) return;
  std::erase_if(m_successors, [&](const Peer& p) { return p.addr == from.addr; });
  if (m_successors.empty()) {
    // Its list is the best guess for ours; stabilize checks the first at once.
    std::vector<Peer> rest;
    for (const auto& p : sanitize(leaving.successors)) {
      if (p.addr != from.addr && p.id != m_self.id) rest.push_back(p);
    }
    if (rest.empty()) {
      // The leaver knew nobody else: we are the ring now.
      m_successors = {m_self};
      return;
    }
    adopt_successors(rest.front(), std::vector<Peer>(rest.begin() + 1, rest.end()));
  }
  m_successor_failures = 0;
  m_next_stabilize = m_now;
}

std::vector<Peer> Ring::sanitize(const std::vector<Peer>& peers) const {
  std::vector<Peer> out;
  for (const auto& p : peers) {
    if (out.size() >= kMaxPeersAccepted) break;
    if (p.addr.empty() || p.addr.size() > kMaxAddrLength) continue;
    out.push_back(p);
  }
  return out;
}

void Ring::on_neighbors(const Peer& from, const Pending& pending, const Neighbors& reply) {
  const std::vector<Peer> successors = sanitize(reply.successors);
  switch (pending.purpose) {
    case Purpose::join_walk: return;  // asked with FindSuccessor: a Neighbors answer is not ours
    case Purpose::join_confirm: {
      if (!m_joining) return;
      if (successors.empty()) {
        confirm_next_join_candidate();  // not in the ring (itself joining): the next one
        return;
      }
      // Alive and a member: it is our successor, its list is ours (§4.2). A
      // member repairing its lost successor list keeps its predecessor.
      const bool repairing = m_member;
      m_joining = false;
      m_member = true;
      m_repair_walks = 0;
      m_join_candidates.clear();
      if (!repairing) m_predecessor.reset();
      adopt_successors(from, successors);  // cut where it wraps back to us
      m_next_stabilize = m_now;
      return;
    }
    case Purpose::stabilize_successor: {
      if (!m_member || m_successors.front().addr != from.addr) return;  // outdated
      m_successor_failures = 0;
      if (successors.empty()) {
        // A member always has a successor (itself when alone, or while it
        // repairs): an empty list means a node that is not in the ring (it
        // restarted and is joining again). Go on with the next one.
        drop_first_successor();
        return;
      }
      adopt_successors(from, successors);
      // A node between us and our successor that claims to be its
      // predecessor becomes our successor only once it answers us itself.
      if (reply.predecessor && reply.predecessor->id != m_self.id &&
          in_open_interval(reply.predecessor->id, m_self.id, from.id) && !reply.predecessor->addr.empty() &&
          reply.predecessor->addr.size() <= kMaxAddrLength) {
        send_request(Purpose::stabilize_candidate, reply.predecessor->addr, reply.predecessor, GetNeighbors{});
        return;
      }
      m_outbox.push_back(Outgoing{m_successors.front().addr, Notify{}});
      return;
    }
    case Purpose::stabilize_candidate: {
      if (!m_member) return;
      // Only a member, and only if it still improves on our successor.
      if (!successors.empty() &&
          (m_successors.front() == m_self || in_open_interval(from.id, m_self.id, m_successors.front().id))) {
        adopt_successors(from, successors);
        m_joining = false;  // a repair ends with any live successor; stabilize refines it
        m_repair_walks = 0;
      }
      if (m_successors.front() != m_self) m_outbox.push_back(Outgoing{m_successors.front().addr, Notify{}});
      return;
    }
    case Purpose::check_predecessor:
    case Purpose::lookup_hop: return;
  }
}

void Ring::on_pong(const Pending& pending) {
  if (m_predecessor && m_predecessor->addr == pending.addr) m_predecessor_failures = 0;
}

void Ring::on_join_step(const Peer& from, const FoundSuccessor& reply) {
  if (!m_joining) return;
  // A rejoining node may find itself (its previous life) in the lists of
  // others: skip it.
  std::vector<Peer> nodes;
  for (const auto& p : sanitize(reply.nodes)) {
    if (p.id != m_self.id) nodes.push_back(p);
  }
  if (from.id == m_self.id || nodes.empty()) {
    // A peer claiming our id, or one that knows nobody: start again from the
    // bootstrap peer, later.
    m_join_via = m_bootstrap;
    m_next_join_attempt = m_now + m_config.rejoin_backoff_ticks;
    return;
  }
  if (reply.done) {
    // `from` is our best predecessor and nodes.front() our successor (§4.2).
    // Zave: adopt no successor unchecked. Ask it for its own list first; if
    // it does not answer, the next node `from` listed is the next candidate.
    m_join_candidates = std::move(nodes);
    confirm_next_join_candidate();
    return;
  }
  // Route on towards our own id, as a lookup does: O(log N) hops with fingers.
  const Peer* next = nullptr;
  for (const auto& p : nodes) {
    if (!in_open_interval(p.id, from.id, m_self.id)) continue;
    if (next == nullptr || p.id.distance_to(m_self.id) < next->id.distance_to(m_self.id)) next = &p;
  }
  if (next == nullptr) {
    m_join_via = m_bootstrap;
    m_next_join_attempt = m_now + m_config.rejoin_backoff_ticks;
    return;
  }
  send_request(Purpose::join_walk, next->addr, *next, FindSuccessor{0, m_self.id});
}

void Ring::confirm_next_join_candidate() {
  if (m_join_candidates.empty()) {
    // Nobody the walk ended at answered: start again from the bootstrap peer, later.
    m_join_via = m_bootstrap;
    m_next_join_attempt = m_now + m_config.rejoin_backoff_ticks;
    return;
  }
  const Peer candidate = m_join_candidates.front();
  m_join_candidates.erase(m_join_candidates.begin());
  send_request(Purpose::join_confirm, candidate.addr, candidate, GetNeighbors{});
}

void Ring::adopt_successors(const Peer& first, const std::vector<Peer>& rest) {
  if (m_successors.empty() || m_successors.front().addr != first.addr) {
    m_successor_failures = 0;
    // A new successor changes every finger up to it: start a round now
    // rather than after the pause (a node that was alone has none at all).
    m_next_fix_fingers = std::min(m_next_fix_fingers, m_now + m_config.fix_fingers_interval_ticks);
    if (!m_fixing_finger) m_next_finger = 0;
  }
  // The list must run clockwise from us. A successor's own list can wrap
  // around past us (a small ring, or a successor that does not know us yet):
  // stop where an entry is no further on than the one before it.
  std::vector<Peer> list{first};
  bool wrapped = false;
  for (const auto& p : rest) {
    if (list.size() >= m_config.successor_list_length) break;
    if (!(m_self.id.distance_to(list.back().id) < m_self.id.distance_to(p.id))) {
      wrapped = true;
      break;
    }
    list.push_back(p);
  }
  m_successors = std::move(list);
  m_successors_wrapped = wrapped;
}

void Ring::drop_first_successor() {
  const std::string gone = m_successors.front().addr;
  forget(gone);
  std::erase_if(m_successors, [&](const Peer& p) { return p.addr == gone; });
  if (m_successors.empty()) {
    rejoin();
    return;
  }
  m_next_stabilize = m_now;
}

void Ring::rectify(const Peer& notifier) {
  if (notifier.id == m_self.id) return;
  if (!m_predecessor || in_open_interval(notifier.id, m_predecessor->id, m_self.id)) {
    if (!m_predecessor || m_predecessor->addr != notifier.addr) m_predecessor_failures = 0;
    m_predecessor = notifier;
  }
}

void Ring::on_timeout(const Pending& pending) {
  switch (pending.purpose) {
    case Purpose::join_confirm: confirm_next_join_candidate(); return;
    case Purpose::join_walk:
      // Restart the walk from the configured bootstrap peer.
      m_join_via = m_bootstrap;
      m_next_join_attempt = m_now + m_config.rejoin_backoff_ticks;
      if (is_repairing() && !m_predecessor && ++m_repair_walks >= kRepairWalksBeforeAlone) {
        // Every successor, the predecessor and the bootstrap peer are gone:
        // nobody is left to find. Go on as a ring of one that others can
        // join, instead of retrying forever.
        m_joining = false;
        m_repair_walks = 0;
      }
      return;
    case Purpose::stabilize_successor: {
      if (!m_member || m_successors.front().addr != pending.addr) return;
      if (++m_successor_failures < m_config.failures_before_dead) {
        m_next_stabilize = m_now;  // ask again at once
        return;
      }
      // The first successor is dead: drop it and go on with the next (§4.4).
      m_successor_failures = 0;
      drop_first_successor();
      return;
    }
    case Purpose::stabilize_candidate:
      // The candidate is dead: keep our successor, and still notify it.
      if (m_member && m_successors.front() != m_self) {
        m_outbox.push_back(Outgoing{m_successors.front().addr, Notify{}});
      }
      return;
    case Purpose::check_predecessor:
      if (m_predecessor && m_predecessor->addr == pending.addr &&
          ++m_predecessor_failures >= m_config.failures_before_dead) {
        m_predecessor.reset();
        m_predecessor_failures = 0;
      }
      return;
    case Purpose::lookup_hop: on_lookup_timeout(pending); return;
  }
}

void Ring::rejoin() {
  // Every successor died at once (more than r consecutive failures): the
  // ring invariant is lost for this node. It stays a member, answering with
  // itself as its successor so that its predecessor keeps it (leaving would
  // make the predecessor drop it and, holding copies of the same dead
  // entries, lose its whole list too: a cascade), and walks to its true
  // successor from its predecessor, else from the bootstrap peer.
  ++m_rejoins;
  const std::optional<std::string> via = m_predecessor ? std::optional(m_predecessor->addr) : m_bootstrap;
  m_successors = {m_self};
  if (!via) return;  // alone for good: nobody is known
  m_joining = true;
  m_join_via = via;
  m_next_join_attempt = m_now;
}

std::vector<Outgoing> Ring::take_outbox() {
  return std::exchange(m_outbox, {});
}

}  // namespace p2pd::chord
