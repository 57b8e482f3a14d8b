#include "daemon/chord/overlay.hpp"

#include <algorithm>
#include <type_traits>
#include <utility>

namespace p2pd::chord {
namespace {

// Global-maintenance hand-offs started per sync round: bounds the lookups a
// node with many stray copies sends at once.
constexpr std::size_t kMaxHandoffsPerSync = 64;
// Replica copies in flight at once: a peer asking for every key we hold gets
// them over several sync rounds, not all of our store's bytes in one go.
constexpr std::size_t kMaxPushBytesInFlight = std::size_t{32} << 20;

}  // namespace

Overlay::Overlay(Peer self, OverlayConfig config)
    : m_ring(std::move(self), config.ring), m_config(config), m_store(config.store) {
  if (m_config.replicas == 0) m_config.replicas = 1;
  if (m_config.sync_interval_ticks == 0) m_config.sync_interval_ticks = 1;
}

bool Overlay::owns(const NodeId& key) const {
  const auto& pred = m_ring.predecessor();
  if (!m_ring.is_member()) return false;
  if (m_ring.successors().front() == m_ring.self() && !m_ring.is_repairing()) return true;  // alone: the whole ring
  return pred && in_half_open_interval(key, pred->id, m_ring.self().id);
}

// --- operations -------------------------------------------------------------

std::uint64_t Overlay::begin(OperationKind kind, const NodeId& key, std::string value) {
  const std::uint64_t id = m_next_operation_id++;
  Operation& op = m_operations[id];
  op.kind = kind;
  op.key = key;
  op.value = std::move(value);
  if (m_operations.size() > m_config.max_operations_in_flight) {
    finish(id, false, ErrorCode::unavailable, "too many operations in flight; try again");
    return id;
  }
  if (kind == OperationKind::put && op.value.size() > kMaxValueBytes) {
    finish(id, false, ErrorCode::invalid_argument,
           fmt::format("value of {} bytes is over the limit of {} bytes", op.value.size(), kMaxValueBytes));
    return id;
  }
  m_operation_of_lookup[m_ring.start_lookup(key)] = id;
  collect_lookups();
  return id;
}

std::uint64_t Overlay::lookup(const NodeId& key) {
  return begin(OperationKind::lookup, key, {});
}
std::uint64_t Overlay::put(const NodeId& key, std::string value) {
  return begin(OperationKind::put, key, std::move(value));
}
std::uint64_t Overlay::get(const NodeId& key) {
  return begin(OperationKind::get, key, {});
}

void Overlay::collect_lookups() {
  for (auto& result : m_ring.take_lookup_results()) {
    auto it = m_operation_of_lookup.find(result.lookup_id);
    if (it == m_operation_of_lookup.end()) continue;
    const std::uint64_t operation_id = it->second;
    m_operation_of_lookup.erase(it);
    on_lookup(operation_id, std::move(result));
  }
}

void Overlay::on_lookup(std::uint64_t operation_id, LookupResult result) {
  auto it = m_operations.find(operation_id);
  if (it == m_operations.end()) return;
  Operation& op = it->second;
  op.path = std::move(result.path);
  if (!result.ok) {
    finish(operation_id, false, ErrorCode::unavailable, std::move(result.error));
    return;
  }
  // The owner and the next replicas-1 distinct nodes.
  for (auto& p : result.holders) {
    if (op.holders.size() >= m_config.replicas) break;
    if (std::none_of(op.holders.begin(), op.holders.end(), [&](const Peer& q) { return q.addr == p.addr; }))
      op.holders.push_back(std::move(p));
  }
  switch (op.kind) {
    case OperationKind::lookup: finish(operation_id, true, ErrorCode::internal, {}); return;
    case OperationKind::put: put_to_holders(operation_id); return;
    case OperationKind::get: get_from_next_holder(operation_id); return;
    case OperationKind::handoff: hand_off_to_holders(operation_id); return;
  }
}

void Overlay::hand_off_to_holders(std::uint64_t operation_id) {
  Operation& op = m_operations.at(operation_id);
  const auto* held = m_store.find(op.key);
  const bool holder =
      std::any_of(op.holders.begin(), op.holders.end(), [&](const Peer& p) { return p.id == m_ring.self().id; });
  if (holder && held != nullptr) m_store.confirm(op.key, m_now);  // still one of its k holders: keep it
  if (holder || held == nullptr) {
    finish(operation_id, true, ErrorCode::internal, {});
    return;
  }
  op.version = held->version;
  op.outstanding = op.holders.size();
  for (const auto& p : op.holders) {
    send(Purpose::client_put, p.addr, operation_id, Put{0, op.key, held->value, held->version});
  }
}

void Overlay::put_to_holders(std::uint64_t operation_id) {
  // The owner numbers the write (the next version it knows of); the other
  // holders then store that very version, so every copy of a write carries
  // the same number and later syncs compare like with like.
  Operation& op = m_operations.at(operation_id);
  op.outstanding = 1;
  write_to(operation_id, op.holders.front(), 0);
}

void Overlay::write_to(std::uint64_t operation_id, const Peer& holder, std::uint64_t version) {
  const Operation& op = m_operations.at(operation_id);
  if (holder.id != m_ring.self().id) {
    send(Purpose::client_put, holder.addr, operation_id, Put{0, op.key, op.value, version});
    return;
  }
  auto written =
      version == 0 ? m_store.write(op.key, op.value, m_now) : m_store.merge(op.key, op.value, version, m_now);
  on_put_answer(operation_id, written.has_value(), written ? *written : 0,
                written ? std::string() : written.error().message);
}

void Overlay::on_put_answer(std::uint64_t operation_id, bool stored, std::uint64_t version, const std::string& error) {
  auto it = m_operations.find(operation_id);
  if (it == m_operations.end()) return;
  Operation& op = it->second;
  if (stored) {
    ++op.copies;
    op.version = std::max(op.version, version);
  } else if (!error.empty()) {
    op.last_error = error;
  }
  if (op.outstanding > 0) --op.outstanding;
  if (op.outstanding > 0) return;
  if (op.kind == OperationKind::put && !op.owner_answered) {
    // The owner has answered: copy its version to the replica holders. If it
    // failed, they number the write themselves (a later sync reconciles).
    op.owner_answered = true;
    const std::vector<Peer> replicas(op.holders.begin() + 1, op.holders.end());
    const std::uint64_t version_for_replicas = stored ? version : 0;
    op.outstanding = replicas.size();
    if (!replicas.empty()) {
      for (const auto& holder : replicas) write_to(operation_id, holder, version_for_replicas);
      return;
    }
  }
  if (op.kind == OperationKind::handoff) {
    // Drop our copy only once every holder has it (and it did not change meanwhile).
    const auto* held = m_store.find(op.key);
    if (op.copies == op.holders.size() && held != nullptr && held->version <= op.version) m_store.erase(op.key);
    finish(operation_id, op.copies == op.holders.size(), ErrorCode::unavailable, {});
    return;
  }
  if (op.copies == 0) {
    finish(operation_id, false, ErrorCode::unavailable,
           "no holder stored the value" + (op.last_error.empty() ? std::string() : ": " + op.last_error));
  } else {
    finish(operation_id, true, ErrorCode::internal, {});
  }
}

void Overlay::get_from_next_holder(std::uint64_t operation_id) {
  Operation& op = m_operations.at(operation_id);
  while (op.next_holder < op.holders.size()) {
    const Peer holder = op.holders[op.next_holder++];
    if (holder.id != m_ring.self().id) {
      send(Purpose::client_get, holder.addr, operation_id, Get{0, op.key});
      return;
    }
    if (const auto* held = m_store.find(op.key)) {
      op.value = held->value;
      op.version = held->version;
      finish(operation_id, true, ErrorCode::internal, {});
      return;
    }
  }
  finish(operation_id, false, ErrorCode::not_found,
         op.last_error.empty() ? "key not found" : "key not found (" + op.last_error + ")");
}

void Overlay::finish(std::uint64_t operation_id, bool ok, ErrorCode code, std::string error) {
  auto it = m_operations.find(operation_id);
  if (it == m_operations.end()) return;
  Operation op = std::move(it->second);
  m_operations.erase(it);
  if (op.kind == OperationKind::handoff) {
    m_handoffs.erase(op.key);
    return;
  }
  OperationResult result;
  result.operation_id = operation_id;
  result.kind = op.kind;
  result.key = op.key;
  result.ok = ok;
  result.error_code = code;
  result.error = std::move(error);
  result.holders = std::move(op.holders);
  result.path = std::move(op.path);
  if (op.kind == OperationKind::get) result.value = std::move(op.value);
  result.version = op.version;
  result.copies = op.copies;
  m_results.push_back(std::move(result));
}

std::vector<OperationResult> Overlay::take_results() {
  collect_lookups();
  return std::exchange(m_results, {});
}

// --- messages ---------------------------------------------------------------

void Overlay::send(Purpose purpose, const std::string& addr, std::uint64_t operation_id, Message message,
                   std::size_t bytes) {
  const std::uint64_t id = m_next_request_id++;
  set_request_id(message, id);
  m_pending.emplace(id, Pending{purpose, addr, m_now + m_config.request_timeout_ticks, operation_id, bytes});
  m_push_bytes_in_flight += bytes;
  m_outbox.push_back(Outgoing{addr, std::move(message)});
}

std::optional<Message> Overlay::receive(const Peer& from, const Message& message) {
  if (from.addr.empty() || from.addr.size() > kMaxAddrLength || m_ring.has_left()) return std::nullopt;
  std::optional<Message> reply = std::visit(
      [&](const auto& m) -> std::optional<Message> {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, Put>) {
          return answer_put(m);
        } else if constexpr (std::is_same_v<T, Get>) {
          GetReply answer{m.request_id, false, {}, 0};
          if (const auto* held = m_store.find(m.key)) {
            answer.found = true;
            answer.value = held->value;
            answer.version = held->version;
          }
          return answer;
        } else if constexpr (std::is_same_v<T, SyncOffer>) {
          return answer_offer(m);
        } else if constexpr (std::is_same_v<T, PutReply> || std::is_same_v<T, GetReply> ||
                             std::is_same_v<T, SyncWant>) {
          auto it = m_pending.find(m.request_id);
          if (it == m_pending.end() || it->second.addr != from.addr) return std::nullopt;
          const Pending pending = it->second;
          m_pending.erase(it);
          on_reply(pending, m);
          return std::nullopt;
        } else {
          return m_ring.receive(from, m);
        }
      },
      message);
  collect_lookups();
  return reply;
}

PutReply Overlay::answer_put(const Put& put) {
  PutReply reply{put.request_id, false, 0, {}};
  auto stored = put.version == 0 ? m_store.write(put.key, put.value, m_now)
                                 : m_store.merge(put.key, put.value, put.version, m_now);
  if (!stored) {
    reply.error = stored.error().message;
    return reply;
  }
  reply.stored = true;
  reply.version = *stored;
  return reply;
}

SyncWant Overlay::answer_offer(const SyncOffer& offer) {
  SyncWant want{offer.request_id, {}};
  const std::size_t count = std::min(offer.items.size(), kMaxSyncItems);
  for (std::size_t i = 0; i < count; ++i) {
    const auto& item = offer.items[i];
    if (offer.from_owner) {
      // Our copy is still wanted here: it is not garbage.
      m_store.confirm(item.key, m_now);
    } else if (!owns(item.key)) {
      continue;  // a hand-over offer: only keys we now own interest us
    }
    if (m_store.lacks(item)) want.keys.push_back(item.key);
  }
  return want;
}

void Overlay::on_reply(const Pending& pending, const Message& reply) {
  switch (pending.purpose) {
    case Purpose::client_put:
      if (const auto* answer = std::get_if<PutReply>(&reply)) {
        on_put_answer(pending.operation_id, answer->stored, answer->version, answer->error.substr(0, 200));
      }
      return;
    case Purpose::client_get: {
      const auto* answer = std::get_if<GetReply>(&reply);
      if (answer == nullptr) return;
      auto it = m_operations.find(pending.operation_id);
      if (it == m_operations.end()) return;
      if (answer->found && answer->value.size() <= kMaxValueBytes) {
        it->second.value = answer->value;
        it->second.version = answer->version;
        finish(pending.operation_id, true, ErrorCode::internal, {});
        return;
      }
      get_from_next_holder(pending.operation_id);
      return;
    }
    case Purpose::sync_offer: {
      const auto* want = std::get_if<SyncWant>(&reply);
      if (want == nullptr) return;
      const std::size_t count = std::min(want->keys.size(), kMaxSyncItems);
      std::set<NodeId> pushed;  // a key asked for twice is sent once
      for (std::size_t i = 0; i < count; ++i) {
        if (!pushed.insert(want->keys[i]).second) continue;
        const auto* held = m_store.find(want->keys[i]);
        if (held == nullptr) continue;
        if (m_push_bytes_in_flight + held->value.size() > kMaxPushBytesInFlight) break;  // next round
        send(Purpose::push, pending.addr, 0, Put{0, want->keys[i], held->value, held->version}, held->value.size());
      }
      return;
    }
    case Purpose::push: m_push_bytes_in_flight -= pending.bytes; return;
  }
}

void Overlay::on_timeout(const Pending& pending) {
  switch (pending.purpose) {
    case Purpose::client_put: on_put_answer(pending.operation_id, false, 0, pending.addr + " did not answer"); return;
    case Purpose::client_get: {
      auto it = m_operations.find(pending.operation_id);
      if (it == m_operations.end()) return;
      it->second.last_error = pending.addr + " did not answer";
      get_from_next_holder(pending.operation_id);
      return;
    }
    case Purpose::sync_offer: return;  // the next sync round tries again
    case Purpose::push: m_push_bytes_in_flight -= pending.bytes; return;
  }
}

// --- time and maintenance ---------------------------------------------------

void Overlay::tick() {
  if (m_ring.has_left()) return;
  ++m_now;
  m_ring.tick();
  for (const auto& pending : take_expired(m_pending, m_now)) on_timeout(pending);
  collect_lookups();
  if (m_now >= m_next_sync) {
    m_next_sync = m_now + m_config.sync_interval_ticks;
    maintain();
  }
}

std::vector<Peer> Overlay::replica_targets() const {
  std::vector<Peer> out;
  for (const auto& p : m_ring.successors()) {
    if (out.size() + 1 >= m_config.replicas) break;
    if (p.id == m_ring.self().id) continue;
    if (std::none_of(out.begin(), out.end(), [&](const Peer& q) { return q.addr == p.addr; })) out.push_back(p);
  }
  return out;
}

void Overlay::offer(const std::string& addr, bool from_owner, const std::vector<KeyVersion>& items) {
  for (std::size_t at = 0; at < items.size(); at += kMaxSyncItems) {
    const auto end = std::min(items.size(), at + kMaxSyncItems);
    SyncOffer page{0, from_owner,
                   std::vector<KeyVersion>(items.begin() + static_cast<std::ptrdiff_t>(at),
                                           items.begin() + static_cast<std::ptrdiff_t>(end))};
    send(Purpose::sync_offer, addr, 0, std::move(page));
  }
}

void Overlay::maintain() {
  if (!m_ring.is_member() || m_store.size() == 0) return;
  const auto& pred = m_ring.predecessor();
  const Peer& self = m_ring.self();
  if (!pred || pred->id == self.id) {
    // Alone, or the predecessor is not known yet: we cannot tell our range,
    // so we neither hand over nor drop anything.
    if (m_ring.successors().front() == self) {
      for (const auto& item : m_store.all()) m_store.confirm(item.key, m_now);
    }
    return;
  }
  const auto owned = m_store.in_range(pred->id, self.id);
  for (const auto& item : owned) m_store.confirm(item.key, m_now);
  for (const auto& target : replica_targets()) offer(target.addr, true, owned);

  std::vector<KeyVersion> others;
  std::size_t handoffs = 0;
  for (const auto& item : m_store.all()) {
    if (in_half_open_interval(item.key, pred->id, self.id)) continue;
    others.push_back(item);
    const auto* held = m_store.find(item.key);
    if (m_now - held->confirmed_at > m_config.gc_after_ticks && handoffs < kMaxHandoffsPerSync &&
        !m_handoffs.contains(item.key)) {
      m_handoffs.insert(item.key);
      ++handoffs;
      begin(OperationKind::handoff, item.key, {});
    }
  }
  offer(pred->addr, false, others);
}

Overlay::Handover Overlay::leave() {
  Handover handover;
  if (m_ring.has_left()) return handover;
  const Peer& successor = m_ring.successors().empty() ? m_ring.self() : m_ring.successors().front();
  if (m_ring.is_member() && successor.id != m_ring.self().id) {
    handover.successor = successor;
    const auto& pred = m_ring.predecessor();
    for (const auto& item : m_store.all()) {
      if (pred && !in_half_open_interval(item.key, pred->id, m_ring.self().id)) continue;
      const auto* held = m_store.find(item.key);
      m_outbox.push_back(Outgoing{successor.addr, Put{m_next_request_id++, item.key, held->value, held->version}});
      ++handover.keys;
    }
  }
  m_ring.leave();
  for (auto& [id, op] : m_operations) {
    if (op.kind == OperationKind::handoff) continue;
    m_results.push_back(
        OperationResult{id, op.kind, op.key, false, ErrorCode::unavailable, "this node is leaving", {}, {}, {}, 0, 0});
  }
  m_operations.clear();
  m_operation_of_lookup.clear();
  m_pending.clear();
  m_push_bytes_in_flight = 0;
  m_handoffs.clear();
  return handover;
}

std::vector<Outgoing> Overlay::take_outbox() {
  collect_lookups();
  auto out = m_ring.take_outbox();
  for (auto& o : m_outbox) out.push_back(std::move(o));
  m_outbox.clear();
  return out;
}

}  // namespace p2pd::chord
