#pragma once
// Raft messages and log entries (Ongaro, "Consensus: Bridging Theory and
// Practice", Stanford 2014; Ongaro & Ousterhout, "In Search of an
// Understandable Consensus Algorithm", USENIX ATC 2014, Figure 2). Peers are
// named by node id; the driver knows where each one is.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "common/node_id.hpp"

namespace p2pd::raft {

using Term = std::uint64_t;
using Index = std::uint64_t;

struct Entry {
  // config: the voter set from this entry on (thesis §4.1), as the
  // concatenated 20-byte ids.
  enum class Kind : std::uint8_t { command, noop, config };
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
  // Sent on the leader's own request (TimeoutNow): voters must not refuse
  // it for having heard from that leader lately.
  bool leadership_transfer = false;
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

// Leadership transfer (thesis §3.10): "your log is as long as mine; start
// an election now".
struct TimeoutNow {
  Term term = 0;
};

// Log compaction (thesis §5.1): the state machine as of `index`, which
// replaces every entry up to it. `voters` is the voter set in force there.
struct Snapshot {
  Index index = 0;  // 0: none
  Term term = 0;
  std::vector<NodeId> voters;
  std::string data;
  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

// A snapshot goes to a follower that needs entries the leader no longer
// holds, in chunks (thesis §5.1, Figure 5.3) so no message is large.
struct InstallSnapshot {
  Term term = 0;
  Index last_index = 0;
  Term last_term = 0;
  std::vector<NodeId> voters;
  std::uint64_t total_bytes = 0;
  std::uint64_t offset = 0;
  std::string data;
};
// How many bytes of that snapshot the follower holds; `done` once it is
// installed (or the follower had already committed past it).
struct InstallSnapshotReply {
  Term term = 0;
  Index last_index = 0;
  std::uint64_t received = 0;
  bool done = false;
};

using Message = std::variant<RequestVote, RequestVoteReply, AppendEntries, AppendEntriesReply, TimeoutNow,
                             InstallSnapshot, InstallSnapshotReply>;

inline std::string encode_voters(const std::vector<NodeId>& voters) {
  std::string out;
  for (const auto& id : voters) out.append(reinterpret_cast<const char*>(id.bytes().data()), NodeId::kBytes);
  return out;
}
inline std::optional<std::vector<NodeId>> decode_voters(const std::string& data) {
  if (data.empty() || data.size() % NodeId::kBytes != 0) return std::nullopt;
  std::vector<NodeId> out;
  for (std::size_t at = 0; at < data.size(); at += NodeId::kBytes) {
    auto id = NodeId::from_bytes(std::span(reinterpret_cast<const std::uint8_t*>(data.data() + at), NodeId::kBytes));
    if (!id) return std::nullopt;
    out.push_back(*id);
  }
  return out;
}

inline Term term_of(const Message& m) {
  return std::visit([](const auto& v) { return v.term; }, m);
}

struct Envelope {
  NodeId to;
  Message message;
};

// What must be on disk before the messages of the same Ready are sent. The
// commit index is kept too (as etcd does), so a restarted node applies what
// it knew was committed at once and its commit index never goes back.
struct HardState {
  Term term = 0;
  std::optional<NodeId> voted_for;
  Index commit = 0;
  friend bool operator==(const HardState&, const HardState&) = default;
};

}  // namespace p2pd::raft
