#pragma once
// Raft messages and log entries (Ongaro, "Consensus: Bridging Theory and
// Practice", Stanford 2014; Ongaro & Ousterhout, "In Search of an
// Understandable Consensus Algorithm", USENIX ATC 2014, Figure 2). Peers are
// named by node id; the driver knows where each one is.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/node_id.hpp"

namespace p2pd::raft {

using Term = std::uint64_t;
using Index = std::uint64_t;

struct Entry {
  enum class Kind : std::uint8_t { command, noop };
  Term term = 0;
  Index index = 0;
  Kind kind = Kind::command;
  std::string data;
  friend bool operator==(const Entry&, const Entry&) = default;
};

// pre_vote: thesis §9.6; the term is the one the candidate would use, and
// neither side changes its own term for it.
struct RequestVote {
  Term term = 0;
  Index last_log_index = 0;
  Term last_log_term = 0;
  bool pre_vote = false;
};
struct RequestVoteReply {
  Term term = 0;
  bool granted = false;
  bool pre_vote = false;
};
struct AppendEntries {
  Term term = 0;
  Index prev_log_index = 0;
  Term prev_log_term = 0;
  std::vector<Entry> entries;
  Index leader_commit = 0;
};
// On failure the follower says where its log parts from the leader's
// (thesis §5.3's optimization): the first index of its term at
// prev_log_index (conflict_term), or its log's end (conflict_term 0).
struct AppendEntriesReply {
  Term term = 0;
  bool success = false;
  Index match_index = 0;
  Index conflict_index = 0;
  Term conflict_term = 0;
};

using Message = std::variant<RequestVote, RequestVoteReply, AppendEntries, AppendEntriesReply>;

inline Term term_of(const Message& m) {
  return std::visit([](const auto& v) { return v.term; }, m);
}

struct Envelope {
  NodeId to;
  Message message;
};

// What must be on disk before the messages of the same Ready are sent.
struct HardState {
  Term term = 0;
  std::optional<NodeId> voted_for;
  friend bool operator==(const HardState&, const HardState&) = default;
};

}  // namespace p2pd::raft
