#pragma once
// Which voter change the leader makes next, so the pool keeps a full set of
// live voters without an operator: the first node bootstraps alone, peers
// are added as they become reachable and caught up, and a voter silent for
// too long is removed so another can take its place. One change at a time
// (thesis §4.1); the Raft core refuses a second until the first commits.
// Pure: the leader's view of its followers in, at most one change out.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/raft/raft.hpp"

namespace p2pd::raft {

struct VoterPolicyConfig {
  std::size_t target_voters = 5;
  std::uint32_t replace_after_ticks = 600;  // a voter this silent is removed
  std::uint32_t live_within_ticks = 40;     // a learner heard from this recently may be added
  // A learner this close to the leader's log may become a voter (§4.2.1:
  // adding one far behind would stall commits while it catches up).
  Index catch_up_slack = 64;
};

struct VoterChange {
  enum class Kind { add, remove };
  Kind kind = Kind::add;
  NodeId node;
  std::string reason;
};

// `relayed`: peers reached only through a relay. A voter should be
// reachable (every message to a relayed one costs the relay, and it dies
// with its relay), so they are added only when no reachable learner is fit,
// and a relayed voter makes way when one is.
std::optional<VoterChange> next_voter_change(const NodeId& self, const std::vector<NodeId>& voters,
                                             const std::map<NodeId, FollowerProgress>& followers, Index last_index,
                                             const VoterPolicyConfig& config, const std::set<NodeId>& relayed = {});

}  // namespace p2pd::raft
