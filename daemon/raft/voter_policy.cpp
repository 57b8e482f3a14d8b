#include "daemon/raft/voter_policy.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace p2pd::raft {

std::optional<VoterChange> next_voter_change(const NodeId& self, const std::vector<NodeId>& voters,
                                             const std::map<NodeId, FollowerProgress>& followers, Index last_index,
                                             const VoterPolicyConfig& config, const std::set<NodeId>& relayed) {
  // The most silent voter other than ourselves (the leader never removes
  // itself here; it hands over on a graceful departure instead).
  const NodeId* most_silent = nullptr;
  std::uint32_t silence = 0;
  for (const auto& voter : voters) {
    if (voter == self) continue;
    auto it = followers.find(voter);
    const std::uint32_t s = it == followers.end() ? config.replace_after_ticks : it->second.silent_ticks;
    if (most_silent == nullptr || s > silence) {
      most_silent = &voter;
      silence = s;
    }
  }
  if (most_silent != nullptr && silence >= config.replace_after_ticks) {
    return VoterChange{VoterChange::Kind::remove, *most_silent, fmt::format("silent for {} ticks", silence)};
  }
  if (most_silent != nullptr && voters.size() > std::max<std::size_t>(config.target_voters, 1)) {
    return VoterChange{VoterChange::Kind::remove, *most_silent,
                       fmt::format("{} voters, {} wanted", voters.size(), config.target_voters)};
  }
  // The most caught-up live learner, reachable ones first; ties go to the
  // lower id (deterministic).
  const NodeId* best = nullptr;
  Index best_match = 0;
  bool best_relayed = true;
  for (const auto& [id, progress] : followers) {
    if (progress.voter || id == self || !progress.answered || progress.silent_ticks > config.live_within_ticks) {
      continue;
    }
    if (progress.match + config.catch_up_slack < last_index) continue;
    const bool is_relayed = relayed.contains(id);
    if (best == nullptr || (best_relayed && !is_relayed) ||
        (is_relayed == best_relayed && progress.match > best_match)) {
      best = &id;
      best_match = progress.match;
      best_relayed = is_relayed;
    }
  }
  if (voters.size() >= config.target_voters) {
    // Full. A relayed voter makes way for a reachable learner fit to vote
    // (removed now, the learner added next).
    if (best == nullptr || best_relayed) return std::nullopt;
    for (const auto& voter : voters) {
      if (voter != self && relayed.contains(voter)) {
        return VoterChange{VoterChange::Kind::remove, voter,
                           "reached only through a relay; a reachable peer takes its place"};
      }
    }
    return std::nullopt;
  }
  if (best == nullptr) return std::nullopt;
  return VoterChange{VoterChange::Kind::add, *best,
                     fmt::format("{} voters, {} wanted", voters.size(), config.target_voters)};
}

}  // namespace p2pd::raft
