#pragma once
// Binds the unchanged raft::Raft core to the simulator. Node ids are derived
// from the sim address; what the core asks to persist goes to the node's
// Durable before its messages leave (as p2pd's driver fsyncs first), so a
// crash and restart resumes from exactly what was on "disk". Every applied
// entry is checked against a shared history: committed prefixes never diverge.
// The state machine is a digest chained over the applied entries, so a node
// restored from a snapshot is checked to hold exactly the state of the nodes
// that applied every entry.

#include <fmt/format.h>

#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/raft/raft.hpp"
#include "tests/sim/simulator.hpp"

namespace p2pd::sim {

struct RaftEnvelope {
  NodeId from;
  raft::Message body;
};

struct RaftDurable {
  raft::HardState hard;
  raft::Snapshot snapshot;
  std::vector<raft::Entry> log;  // after the snapshot
};

// The simulated state machine: how far it got and a digest of everything applied.
struct RaftDigest {
  raft::Index index = 0;
  std::uint64_t digest = 1469598103934665603ull;
  void apply(const raft::Entry& e) {
    auto mix = [this](std::uint64_t v) { digest = (digest ^ v) * 1099511628211ull; };
    mix(e.index);
    mix(e.term);
    mix(static_cast<std::uint64_t>(e.kind));
    for (char ch : e.data) mix(static_cast<std::uint8_t>(ch));
    index = e.index;
  }
  [[nodiscard]] std::string encode() const { return fmt::format("{}:{}", index, digest); }
  static std::optional<RaftDigest> decode(const std::string& s) {
    RaftDigest d;
    if (std::sscanf(s.c_str(), "%" SCNu64 ":%" SCNu64, &d.index, &d.digest) != 2) return std::nullopt;
    return d;
  }
};

inline NodeId raft_id(Address a) {
  return NodeId::hash_of(fmt::format("raft-node-{}", a));
}

// What every node applied, and who led each term: the checkers' memory.
struct RaftHistory {
  std::map<raft::Index, raft::Entry> committed;
  std::map<raft::Index, raft::Term> committed_by_term;  // the earliest term a node applied it in
  std::map<raft::Term, NodeId> leaders;
  std::map<raft::Index, std::uint64_t> digest_at;  // the state after applying each index
  std::optional<std::string> violation;
  std::uint64_t applied = 0;

  void on_commit(Address node, const raft::Entry& e, raft::Term now) {
    ++applied;
    auto [by, first] = committed_by_term.emplace(e.index, now);
    if (!first) by->second = std::min(by->second, now);
    auto [it, fresh] = committed.emplace(e.index, e);
    if (!fresh && !(it->second == e) && !violation) {
      violation = fmt::format("node {} committed a different entry at index {}", node, e.index);
    }
  }
  // Every node's state machine passes through the same states.
  void on_state(Address node, const RaftDigest& state) {
    auto [it, fresh] = digest_at.emplace(state.index, state.digest);
    if (!fresh && it->second != state.digest && !violation) {
      violation = fmt::format("node {} has a different state machine after index {}", node, state.index);
    }
  }
  void on_role(Address node, const raft::Raft& r) {
    if (r.role() != raft::Role::leader) return;
    auto [it, fresh] = leaders.emplace(r.term(), r.self());
    if (!fresh && it->second != r.self() && !violation) {
      violation = fmt::format("two leaders in term {} (node {} is one)", r.term(), node);
    }
    // Leader completeness (§5.4): a leader of a later term than the one an
    // entry was committed in holds it. (A stale leader of an older term,
    // cut off from the rest, need not.)
    for (const auto& [index, entry] : committed) {
      if (committed_by_term.at(index) >= r.term() || index <= r.snapshot_index()) continue;
      if (index > r.last_index() || !(r.entry(index) == entry)) {
        if (!violation) violation = fmt::format("leader {} of term {} lacks committed entry {}", node, r.term(), index);
        break;
      }
    }
  }
};

class RaftNode final : public Process<RaftEnvelope> {
 public:
  static constexpr Address kMaxNodes = 64;  // the addresses a node can send to

  // Nodes 0..voters-1 are the initial voters; the others start as
  // learners. `compact_every`: snapshot the state machine after that many
  // applied entries (0: never).
  RaftNode(Address self, std::size_t voters, RaftDurable& durable, Rng& rng, RaftHistory& history,
           const raft::RaftConfig& config, std::size_t compact_every = 0)
      : m_self(self),
        m_durable(durable),
        m_history(history),
        m_compact_every(compact_every),
        m_raft(raft_id(self), voter_ids(voters), config, rng.next(), durable.hard, durable.log, durable.snapshot) {
    for (Address a = 0; a < kMaxNodes; ++a) m_address_of[raft_id(a)] = a;
    if (durable.snapshot.index > 0) restore(durable.snapshot);
  }

  void tick() override {
    m_raft.tick();
    drain();
  }
  void receive(Address /*from*/, const RaftEnvelope& envelope) override {
    m_raft.step(envelope.from, envelope.body);
    drain();
  }
  std::vector<Outgoing<RaftEnvelope>> take_outbox() override { return std::exchange(m_out, {}); }

  [[nodiscard]] raft::Raft& raft() { return m_raft; }
  [[nodiscard]] const RaftDigest& state() const { return m_state; }

 private:
  static std::vector<NodeId> voter_ids(std::size_t n) {
    std::vector<NodeId> ids;
    for (Address a = 0; a < n; ++a) ids.push_back(raft_id(a));
    return ids;
  }
  void restore(const raft::Snapshot& snapshot) {
    auto state = RaftDigest::decode(snapshot.data);
    if (!state || state->index != snapshot.index) {
      if (!m_history.violation) m_history.violation = fmt::format("node {} got a bad snapshot", m_self);
      return;
    }
    m_state = *state;
    m_history.on_state(m_self, m_state);
  }
  // The durable log holds the entries after the durable snapshot.
  void keep_log_from(raft::Index first) {
    std::erase_if(m_durable.log, [&](const raft::Entry& e) { return e.index < first; });
  }
  void drain() {
    auto ready = m_raft.take_ready();
    // Persist first: snapshot, truncation, entries, hard state.
    if (ready.snapshot) {
      m_durable.snapshot = *ready.snapshot;
      keep_log_from(ready.snapshot->index + 1);
      if (ready.restore_snapshot) restore(*ready.snapshot);
    }
    if (ready.truncate_from) {
      std::erase_if(m_durable.log, [&](const raft::Entry& e) { return e.index >= *ready.truncate_from; });
    }
    for (auto& e : ready.append) {
      std::erase_if(m_durable.log, [&](const raft::Entry& x) { return x.index >= e.index; });
      m_durable.log.push_back(e);
    }
    if (ready.hard_state) m_durable.hard = *ready.hard_state;
    for (const auto& e : ready.committed) {
      m_history.on_commit(m_self, e, m_raft.term());
      if (e.index != m_state.index + 1 && !m_history.violation) {
        m_history.violation = fmt::format("node {} applied index {} after {}", m_self, e.index, m_state.index);
      }
      m_state.apply(e);
      m_history.on_state(m_self, m_state);
    }
    if (m_compact_every > 0 && m_state.index >= m_raft.snapshot_index() + m_compact_every) {
      (void)m_raft.compact(m_state.index, m_state.encode());
      auto compacted = m_raft.take_ready();  // only the snapshot: persist it as above
      if (compacted.snapshot) {
        m_durable.snapshot = *compacted.snapshot;
        keep_log_from(compacted.snapshot->index + 1);
      }
      for (auto& envelope : compacted.messages) ready.messages.push_back(std::move(envelope));
    }
    m_history.on_role(m_self, m_raft);
    for (auto& envelope : ready.messages) {
      auto it = m_address_of.find(envelope.to);
      if (it != m_address_of.end())
        m_out.push_back({it->second, RaftEnvelope{m_raft.self(), std::move(envelope.message)}});
    }
  }

  Address m_self;
  RaftDurable& m_durable;
  RaftHistory& m_history;
  std::size_t m_compact_every;
  raft::Raft m_raft;
  RaftDigest m_state;
  std::map<NodeId, Address> m_address_of;
  std::vector<Outgoing<RaftEnvelope>> m_out;
};

}  // namespace p2pd::sim
