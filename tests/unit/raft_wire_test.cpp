// The Raft wire (daemon/net/raft_codec) and the leader's voter policy
// (daemon/raft/voter_policy): what a peer sends is checked before the core
// sees it, and the pool's voter set heals one change at a time.
#include <catch2/catch.hpp>

#include "daemon/net/raft_codec.hpp"
#include "daemon/raft/voter_policy.hpp"

using namespace p2pd;
using namespace p2pd::raft;

namespace {

NodeId node(int n) {
  return NodeId::hash_of(fmt::format("node {}", n));
}
const HostPort kAddr{"127.0.0.1", 7420};

}  // namespace

TEST_CASE("raft wire: every message survives a round trip", "[unit][raft]") {
  const std::vector<Message> messages{
      RequestVote{7, 10, 6, true, true},
      RequestVoteReply{7, true, true},
      AppendEntries{
          7, 3, 2, {Entry{7, 4, Entry::Kind::command, std::string("a\0b", 3)}, Entry{7, 5, Entry::Kind::noop, {}}}, 4},
      AppendEntriesReply{7, false, 0, 3, 2},
      TimeoutNow{7},
      InstallSnapshot{7, 100, 6, {node(1), node(2)}, 10, 4, "chunk"},
      InstallSnapshotReply{7, 100, 9, false},
  };
  for (const auto& m : messages) {
    auto decoded = net::decode_raft(net::encode_raft(node(1), kAddr, node(2), m), node(2));
    REQUIRE(decoded);
    CHECK(decoded->from == node(1));
    CHECK(decoded->from_addr == kAddr);
    REQUIRE(decoded->message);
    CHECK(decoded->message->index() == m.index());
    CHECK(term_of(*decoded->message) == 7);
  }
  const auto append = std::get<AppendEntries>(
      *net::decode_raft(net::encode_raft(node(1), kAddr, node(2), messages[2]), node(2))->message);
  CHECK(append.entries == std::get<AppendEntries>(messages[2]).entries);
  auto hello = net::decode_raft(net::encode_raft_hello(node(1), kAddr, node(2)), node(2));
  REQUIRE(hello);
  CHECK_FALSE(hello->message);
}

TEST_CASE("raft wire: what a peer must not send is refused with the reason", "[unit][raft]") {
  const auto good =
      net::encode_raft(node(1), kAddr, node(2), AppendEntries{3, 0, 0, {Entry{3, 1, Entry::Kind::command, "x"}}, 0});
  auto refused = [&](proto::RaftMessage m, const std::string& says) {
    auto decoded = net::decode_raft(m, node(2));
    REQUIRE_FALSE(decoded);
    CHECK_THAT(decoded.error().message, Catch::Contains(says));
  };
  auto m = good;
  m.set_from_id("short");
  refused(m, "20 bytes");
  REQUIRE_FALSE(net::decode_raft(good, node(3)));  // meant for node 2, not us
  m = good;
  m.set_from_addr("not an address");
  refused(m, "HOST:PORT");
  m = good;
  m.mutable_append()->mutable_entries(0)->set_kind(9);
  refused(m, "unknown kind");
  m = good;
  m.mutable_append()->mutable_entries(0)->set_index(0);
  refused(m, "index 0");
  m = good;
  for (std::size_t i = 0; i <= net::kMaxRaftEntriesPerMessage; ++i) m.mutable_append()->add_entries()->set_index(1);
  refused(m, "log entries in one message");
  m = good;
  m.clear_append();
  refused(m, "without a body");
  auto snapshot = net::encode_raft(node(1), kAddr, node(2), InstallSnapshot{3, 9, 2, {node(1)}, 4, 2, "abc"});
  refused(snapshot, "past the snapshot's end");
  snapshot = net::encode_raft(node(1), kAddr, node(2), InstallSnapshot{3, 9, 2, {}, 4, 0, "ab"});
  refused(snapshot, "0 voters");
  refused(net::encode_raft(node(2), kAddr, node(2), TimeoutNow{1}), "from this node");
}

TEST_CASE("voter policy: fill up with caught-up live learners and replace the silent", "[unit][raft]") {
  VoterPolicyConfig config;
  config.target_voters = 3;
  config.replace_after_ticks = 100;
  config.live_within_ticks = 10;
  const NodeId self = node(0);
  std::map<NodeId, FollowerProgress> followers{
      {node(1), {50, 0, true, true}},   {node(2), {50, 2, false, true}},  // live, caught up: the one to add
      {node(3), {50, 50, false, true}},                                   // silent too long to be added
      {node(4), {1, 0, false, true}},                                     // far behind
      {node(5), {50, 0, false, false}},                                   // never answered this leader
  };
  auto change = next_voter_change(self, {self, node(1)}, followers, 50, config);
  REQUIRE(change);
  CHECK(change->kind == VoterChange::Kind::add);
  CHECK(change->node == node(2));
  // Full: nothing to do.
  CHECK_FALSE(next_voter_change(self, {self, node(1), node(2)}, followers, 50, config));
  // A voter silent past the limit goes first (the leader itself never does).
  followers[node(1)].silent_ticks = 100;
  change = next_voter_change(self, {self, node(1), node(2)}, followers, 50, config);
  REQUIRE(change);
  CHECK(change->kind == VoterChange::Kind::remove);
  CHECK(change->node == node(1));
  // Too many voters (the target was lowered): the most silent goes.
  followers[node(1)].silent_ticks = 0;
  followers[node(2)].voter = true;
  followers[node(2)].silent_ticks = 7;
  change = next_voter_change(self, {self, node(1), node(2), node(5)}, followers, 50, config);
  REQUIRE(change);
  CHECK(change->kind == VoterChange::Kind::remove);
  CHECK(change->node == node(2));
  // Alone with nobody fit to add: no change.
  CHECK_FALSE(next_voter_change(self, {self}, {{node(4), {1, 0, false, true}}}, 500, config));
}

TEST_CASE("voter policy: voters are chosen among reachable peers", "[unit][raft]") {
  VoterPolicyConfig config;
  config.target_voters = 3;
  config.live_within_ticks = 10;
  const NodeId self = node(0);
  std::map<NodeId, FollowerProgress> followers{
      {node(1), {60, 0, false, true}},  // relayed, the most caught up
      {node(2), {50, 0, false, true}},  // reachable
  };
  const std::set<NodeId> relayed{node(1)};
  // The reachable learner goes first, even a little behind.
  auto change = next_voter_change(self, {self}, followers, 60, config, relayed);
  REQUIRE(change);
  CHECK(change->kind == VoterChange::Kind::add);
  CHECK(change->node == node(2));
  // With no reachable learner left, a relayed one is better than too few voters.
  followers[node(2)].voter = true;
  change = next_voter_change(self, {self, node(2)}, followers, 60, config, relayed);
  REQUIRE(change);
  CHECK(change->node == node(1));
  // Full with a relayed voter, and a reachable learner fit to vote: the
  // relayed voter makes way.
  followers[node(1)].voter = true;
  followers[node(3)] = {60, 0, false, true};
  change = next_voter_change(self, {self, node(1), node(2)}, followers, 60, config, relayed);
  REQUIRE(change);
  CHECK(change->kind == VoterChange::Kind::remove);
  CHECK(change->node == node(1));
  // ... but not for a learner that is itself relayed, nor when none is fit.
  CHECK_FALSE(next_voter_change(self, {self, node(1), node(2)}, followers, 60, config, {node(1), node(3)}));
  followers[node(3)].silent_ticks = 50;
  CHECK_FALSE(next_voter_change(self, {self, node(1), node(2)}, followers, 60, config, relayed));
  // The leader never removes itself for being relayed.
  followers[node(3)].silent_ticks = 0;
  CHECK_FALSE(next_voter_change(self, {self, node(1), node(2)}, followers, 60, config, {self}));
}
