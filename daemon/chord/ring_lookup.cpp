// Fingers and iterative lookups (Stoica et al., "Chord", SIGCOMM 2001, §4.3;
// the iterative style of §4.3's "iterative lookups", as in DHash). The asker
// keeps every candidate it has heard of, closest preceding the key first,
// and asks one at a time: a node that does not answer within the request
// timeout is skipped (and dropped from the fingers), so a lookup routes
// around dead nodes instead of failing with them.
#include <algorithm>
#include <utility>

#include "daemon/chord/ring.hpp"

namespace p2pd::chord {
namespace {

// Candidates a single answer may add, and hops a lookup may take. Every hop
// strictly approaches the key, so a lookup ends anyway; the caps bound what
// a lying peer can make us do.
constexpr std::size_t kCandidatesPerAnswer = 4;
constexpr std::size_t kMaxHops = 64;
constexpr std::uint32_t kMaxHopTimeouts = 16;

}  // namespace

std::vector<Peer> Ring::holders_after_self() const {
  std::vector<Peer> out = m_successors;
  // A list that stopped where the ring wraps back to us (a ring of at most
  // r+1 nodes): we are the next holder after it.
  if (m_successors_wrapped && out.front() != m_self) out.push_back(m_self);
  return out;
}

std::vector<Peer> Ring::closest_preceding(const NodeId& key, std::size_t count) const {
  std::vector<Peer> out;
  auto consider = [&](const Peer& p) {
    if (p.id == m_self.id || !in_open_interval(p.id, m_self.id, key)) return;
    if (std::any_of(out.begin(), out.end(), [&](const Peer& q) { return q.id == p.id; })) return;
    out.push_back(p);
  };
  for (const auto& finger : m_fingers) {
    if (finger) consider(*finger);
  }
  if (m_config.route_through_successors) {
    for (const auto& p : m_successors) consider(p);
  } else {
    consider(m_successors.front());  // finger[0], even before fix_fingers set it
  }
  // Closest to the key first: smallest clockwise distance from it to the key.
  std::sort(out.begin(), out.end(),
            [&](const Peer& a, const Peer& b) { return a.id.distance_to(key) < b.id.distance_to(key); });
  if (out.size() > count) out.resize(count);
  return out;
}

FoundSuccessor Ring::answer_find_successor(const FindSuccessor& request) const {
  FoundSuccessor reply{request.request_id, false, {}};
  if (!m_member) return reply;  // empty: "not in the ring", the asker goes on elsewhere
  // A repairing node's successor is itself only for want of a better one:
  // it must not claim the whole ring, only pass the asker on.
  if (!is_repairing() && in_half_open_interval(request.key, m_self.id, m_successors.front().id)) {
    reply.done = true;
    reply.nodes = holders_after_self();
    return reply;
  }
  reply.nodes = closest_preceding(request.key, kCandidatesPerAnswer);
  return reply;
}

std::uint64_t Ring::start_lookup(const NodeId& key) {
  const std::size_t user_lookups = static_cast<std::size_t>(
      std::count_if(m_lookups.begin(), m_lookups.end(), [](const auto& l) { return !l.second.finger; }));
  if (user_lookups >= m_config.max_lookups_in_flight) {
    const std::uint64_t id = m_next_lookup_id++;
    m_lookup_results.push_back(LookupResult{id, key, false, "too many lookups in flight; try again", {}, {}});
    return id;
  }
  return begin_lookup(key, std::nullopt);
}

std::uint64_t Ring::begin_lookup(const NodeId& key, std::optional<std::size_t> finger) {
  const std::uint64_t id = m_next_lookup_id++;
  Lookup& lookup = m_lookups[id];
  lookup.key = key;
  lookup.finger = finger;
  if (!m_member) {
    finish_lookup(id, false, m_left ? "this node has left the ring" : "this node has not joined the ring yet", {});
    return id;
  }
  if (!is_repairing() && in_half_open_interval(key, m_self.id, m_successors.front().id)) {
    finish_lookup(id, true, {}, holders_after_self());
    return id;
  }
  lookup.candidates = closest_preceding(key, NodeId::kBits);
  advance_lookup(id);
  return id;
}

void Ring::advance_lookup(std::uint64_t lookup_id) {
  auto it = m_lookups.find(lookup_id);
  if (it == m_lookups.end()) return;
  Lookup& lookup = it->second;
  if (lookup.path.size() >= kMaxHops || lookup.timeouts >= kMaxHopTimeouts) {
    finish_lookup(lookup_id, false, "lookup gave up: too many hops or unanswered nodes", {});
    return;
  }
  auto next = std::find_if(lookup.candidates.begin(), lookup.candidates.end(),
                           [&](const Peer& p) { return !lookup.asked.contains(p.addr); });
  if (next == lookup.candidates.end()) {
    finish_lookup(lookup_id, false, "no node on the route to the key's owner answered", {});
    return;
  }
  const Peer hop = *next;
  lookup.asked.insert(hop.addr);
  const std::uint64_t request_id = send_request(Purpose::lookup_hop, hop.addr, hop, FindSuccessor{0, lookup.key});
  m_pending.at(request_id).lookup_id = lookup_id;
}

void Ring::on_found_successor(const Peer& from, const Pending& pending, const FoundSuccessor& reply) {
  if (pending.purpose == Purpose::join_walk) {
    on_join_step(from, reply);
    return;
  }
  if (pending.purpose != Purpose::lookup_hop) return;
  auto it = m_lookups.find(pending.lookup_id);
  if (it == m_lookups.end()) return;
  Lookup& lookup = it->second;
  lookup.path.push_back(pending.peer.value_or(from));
  std::vector<Peer> nodes = sanitize(reply.nodes);
  if (reply.done && !nodes.empty()) {
    finish_lookup(pending.lookup_id, true, {}, std::move(nodes));
    return;
  }
  // Only nodes strictly between the answerer and the key make progress;
  // anything else is stale or a lie, and would let a lookup run in circles.
  for (const auto& p : nodes) {
    if (p.id == m_self.id || !in_open_interval(p.id, from.id, lookup.key)) continue;
    if (std::any_of(lookup.candidates.begin(), lookup.candidates.end(),
                    [&](const Peer& q) { return q.addr == p.addr; }))
      continue;
    lookup.candidates.push_back(p);
  }
  const NodeId& key = lookup.key;
  std::stable_sort(lookup.candidates.begin(), lookup.candidates.end(),
                   [&](const Peer& a, const Peer& b) { return a.id.distance_to(key) < b.id.distance_to(key); });
  advance_lookup(pending.lookup_id);
}

void Ring::on_lookup_timeout(const Pending& pending) {
  auto it = m_lookups.find(pending.lookup_id);
  if (it == m_lookups.end()) return;
  ++it->second.timeouts;
  forget(pending.addr);  // a finger that does not answer is looked up afresh
  advance_lookup(pending.lookup_id);
}

void Ring::finish_lookup(std::uint64_t lookup_id, bool ok, std::string error, std::vector<Peer> holders) {
  auto it = m_lookups.find(lookup_id);
  if (it == m_lookups.end()) return;
  Lookup lookup = std::move(it->second);
  m_lookups.erase(it);
  // A lookup can end while its last request is still pending (the hop cap):
  // drop those so their answers or timeouts are not taken for another's.
  std::erase_if(m_pending, [&](const auto& p) {
    return p.second.purpose == Purpose::lookup_hop && p.second.lookup_id == lookup_id;
  });
  if (lookup.finger) {
    m_fixing_finger = false;
    if (ok) {
      on_finger_found(*lookup.finger, holders);
    } else {
      next_finger_after(*lookup.finger + 1);  // try it again next round
    }
    return;
  }
  m_lookup_results.push_back(
      LookupResult{lookup_id, lookup.key, ok, std::move(error), std::move(holders), std::move(lookup.path)});
}

std::vector<LookupResult> Ring::take_lookup_results() {
  return std::exchange(m_lookup_results, {});
}

void Ring::fix_fingers() {
  // Fingers whose start lies in (self, successor] are the successor: set
  // them here, no message needed. The first one beyond is looked up; when it
  // answers, every later finger the same node covers is set too.
  const Peer& successor = m_successors.front();
  for (std::size_t scanned = 0; scanned < NodeId::kBits; ++scanned) {
    const std::size_t i = m_next_finger;
    const NodeId start = m_self.id.plus_power_of_two(i);
    if (successor == m_self || in_half_open_interval(start, m_self.id, successor.id)) {
      m_fingers[i] = successor == m_self ? std::nullopt : std::optional(successor);
      if (!next_finger_after(i + 1)) return;
      continue;
    }
    m_fixing_finger = true;
    begin_lookup(start, i);
    return;
  }
}

void Ring::on_finger_found(std::size_t index, const std::vector<Peer>& holders) {
  if (holders.empty()) return;
  const Peer& owner = holders.front();
  const NodeId start = m_self.id.plus_power_of_two(index);
  std::size_t i = index;
  // finger[j] = successor(start_j) = owner for every later start_j in (start, owner].
  while (i < NodeId::kBits) {
    const NodeId start_i = m_self.id.plus_power_of_two(i);
    if (i != index && !in_half_open_interval(start_i, start, owner.id)) break;
    m_fingers[i] = owner.id == m_self.id ? std::nullopt : std::optional(owner);
    ++i;
  }
  next_finger_after(i);
}

bool Ring::next_finger_after(std::size_t index) {
  if (index < NodeId::kBits) {
    m_next_finger = index;
    return true;
  }
  // A round is done: the next starts after a pause, so an idle ring costs a
  // few lookups per node per round, not a steady stream.
  m_next_finger = 0;
  m_next_fix_fingers = m_now + m_config.finger_round_interval_ticks;
  return false;
}

std::vector<Finger> Ring::fingers() const {
  std::vector<Finger> out;
  for (std::size_t i = 0; i < m_fingers.size(); ++i) {
    if (m_fingers[i]) out.push_back(Finger{m_self.id.plus_power_of_two(i), *m_fingers[i]});
  }
  return out;
}

std::vector<Peer> Ring::known_peers() const {
  std::vector<Peer> out;
  auto add = [&](const Peer& p) {
    if (p.id == m_self.id) return;
    if (std::none_of(out.begin(), out.end(), [&](const Peer& q) { return q.addr == p.addr; })) out.push_back(p);
  };
  if (m_predecessor) add(*m_predecessor);
  for (const auto& p : m_successors) add(p);
  for (const auto& f : m_fingers) {
    if (f) add(*f);
  }
  return out;
}

void Ring::forget(const std::string& addr) {
  for (auto& finger : m_fingers) {
    if (finger && finger->addr == addr) finger.reset();
  }
}

}  // namespace p2pd::chord
