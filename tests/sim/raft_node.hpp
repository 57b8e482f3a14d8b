#pragma once
// Binds the unchanged raft::Raft core to the simulator. Node ids are derived
// from the sim address; what the core asks to persist goes to the node's
// Durable before its messages leave (as p2pd's driver fsyncs first), so a
// crash and restart resumes from exactly what was on "disk". Every applied
// entry is checked against a shared history: committed prefixes never diverge.

#include <fmt/format.h>

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
  std::vector<raft::Entry> log;
};

inline NodeId raft_id(Address a) {
  return NodeId::hash_of(fmt::format("raft-node-{}", a));
}

// What every node applied, and who led each term: the checkers' memory.
struct RaftHistory {
  std::map<raft::Index, raft::Entry> committed;
  std::map<raft::Index, raft::Term> committed_by_term;  // the earliest term a node applied it in
  std::map<raft::Term, NodeId> leaders;
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
      if (committed_by_term.at(index) >= r.term()) continue;
      if (index > r.last_index() || !(r.log()[index - 1] == entry)) {
        if (!violation) violation = fmt::format("leader {} of term {} lacks committed entry {}", node, r.term(), index);
        break;
      }
    }
  }
};

class RaftNode final : public Process<RaftEnvelope> {
 public:
  RaftNode(Address self, std::size_t voters, RaftDurable& durable, Rng& rng, RaftHistory& history,
           const raft::RaftConfig& config)
      : m_self(self),
        m_durable(durable),
        m_history(history),
        m_raft(raft_id(self), voter_ids(voters), config, rng.next(), durable.hard, durable.log) {
    for (Address a = 0; a < voters; ++a) m_address_of[raft_id(a)] = a;
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

 private:
  static std::vector<NodeId> voter_ids(std::size_t n) {
    std::vector<NodeId> ids;
    for (Address a = 0; a < n; ++a) ids.push_back(raft_id(a));
    return ids;
  }
  void drain() {
    auto ready = m_raft.take_ready();
    // Persist first.
    if (ready.hard_state) m_durable.hard = *ready.hard_state;
    if (ready.truncate_from) m_durable.log.resize(*ready.truncate_from - 1);
    for (auto& e : ready.append) {
      m_durable.log.resize(e.index - 1);
      m_durable.log.push_back(e);
    }
    for (const auto& e : ready.committed) m_history.on_commit(m_self, e, m_raft.term());
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
  raft::Raft m_raft;
  std::map<NodeId, Address> m_address_of;
  std::vector<Outgoing<RaftEnvelope>> m_out;
};

}  // namespace p2pd::sim
