// The Raft core on its own, with hand-delivered messages: the scenarios
// whose timing a random simulation rarely hits.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <functional>
#include <map>
#include <memory>
#include <set>

#include "daemon/raft/raft.hpp"

using namespace p2pd;
using namespace p2pd::raft;

namespace {

NodeId server(int n) {
  return NodeId::hash_of(fmt::format("S{}", n));
}

std::vector<NodeId> five() {
  std::vector<NodeId> out;
  for (int n = 1; n <= 5; ++n) out.push_back(server(n));
  return out;
}

Entry entry(Term term, Index index) {
  return Entry{term, index, Entry::Kind::command, fmt::format("t{}i{}", term, index)};
}

// Delivers messages among the nodes that are not cut off, until quiet.
struct Net {
  std::map<NodeId, std::unique_ptr<Raft>> nodes;
  std::set<NodeId> cut;
  // What the network makes of a message on its way (the identity by default).
  std::function<Message(const NodeId& to, Message)> alter = [](const NodeId&, Message m) { return m; };

  Raft& add(int n, HardState hard, std::vector<Entry> log, RaftConfig config = {}) {
    auto& slot = nodes[server(n)];
    slot = std::make_unique<Raft>(server(n), five(), config, static_cast<std::uint64_t>(n), hard, std::move(log));
    return *slot;
  }
  void flush() {
    for (int round = 0; round < 100; ++round) {
      bool any = false;
      for (auto& [id, node] : nodes) {
        for (auto& envelope : node->take_ready().messages) {
          if (cut.contains(id) || cut.contains(envelope.to) || !nodes.contains(envelope.to)) continue;
          any = true;
          nodes[envelope.to]->step(id, alter(envelope.to, std::move(envelope.message)));
        }
      }
      if (!any) return;
    }
  }
  void elect(Raft& candidate) {
    for (int i = 0; i < 100 && candidate.role() != Role::leader; ++i) {
      candidate.tick();
      flush();
    }
  }
};

}  // namespace

TEST_CASE("raft: an entry of an older term is never committed by counting replicas (Figure 8)", "[unit][raft]") {
  // Figure 8 (c): S1 is re-elected in term 4 holding (2, term 2), which S2
  // has too; S5 holds (2, term 3) from its own term 3. S1 brings S3 up to
  // index 2, so three of five hold (2, term 2), but committing it would be
  // wrong: S5 can still win term 5 and overwrite it (Figure 8 (d)).
  RaftConfig one_at_a_time;
  one_at_a_time.max_entries_per_append = 1;
  Net net;
  Raft& s1 = net.add(1, HardState{3, std::nullopt}, {entry(1, 1), entry(2, 2)}, one_at_a_time);
  Raft& s2 = net.add(2, HardState{3, std::nullopt}, {entry(1, 1), entry(2, 2)});
  Raft& s3 = net.add(3, HardState{3, std::nullopt}, {entry(1, 1)});
  net.add(4, HardState{3, std::nullopt}, {entry(1, 1)});
  net.add(5, HardState{3, server(5)}, {entry(1, 1), entry(3, 2)});
  net.cut = {server(4), server(5)};
  // S3 gets index 2 but never S1's no-op of term 4: appends to it lose
  // every entry past index 2 on the way.
  net.alter = [](const NodeId& to, Message m) {
    if (auto* append = std::get_if<AppendEntries>(&m); append != nullptr && to == server(3)) {
      std::erase_if(append->entries, [](const Entry& e) { return e.index >= 3; });
    }
    return m;
  };
  net.elect(s1);
  REQUIRE(s1.role() == Role::leader);
  REQUIRE(s1.term() == 4);
  for (int i = 0; i < 10; ++i) {
    s1.tick();
    net.flush();
  }
  REQUIRE(s2.last_index() == 3);
  REQUIRE(s3.last_index() == 2);
  REQUIRE(s3.log()[1].term == 2);
  // Index 2 is on three of five servers, the no-op of term 4 on two.
  CHECK(s1.commit_index() == 0);
  net.alter = [](const NodeId&, Message m) { return m; };
  // Once the no-op of term 4 is on a majority, both commit together.
  for (int i = 0; i < 10; ++i) {
    s1.tick();
    net.flush();
  }
  CHECK(s1.commit_index() >= 3);
}

TEST_CASE("raft: a vote goes to at most one candidate per term and only to an up-to-date log", "[unit][raft]") {
  Raft voter(server(1), five(), RaftConfig{}, 1, HardState{5, std::nullopt}, {entry(1, 1), entry(5, 2)});
  voter.step(server(2), RequestVote{6, 2, 5, false});
  voter.step(server(3), RequestVote{6, 9, 5, false});  // same term: already voted
  voter.step(server(4), RequestVote{7, 1, 1, false});  // newer term, older log
  std::vector<bool> granted;
  for (auto& e : voter.take_ready().messages) granted.push_back(std::get<RequestVoteReply>(e.message).granted);
  CHECK(granted == std::vector<bool>{true, false, false});
  CHECK(voter.term() == 7);
}

TEST_CASE("raft: a follower ignores vote requests while its leader is alive (check-quorum lease)", "[unit][raft]") {
  Raft follower(server(1), five(), RaftConfig{}, 1);
  follower.step(server(2), AppendEntries{3, 0, 0, {}, 0});
  follower.take_ready();
  follower.step(server(3), RequestVote{4, 10, 3, false});
  CHECK(follower.term() == 3);
  CHECK(follower.take_ready().messages.empty());
  CHECK(follower.leader() == server(2));
}

TEST_CASE("raft: a leader cut off from the majority steps down (check-quorum)", "[unit][raft]") {
  Net net;
  Raft& s1 = net.add(1, {}, {});
  for (int n = 2; n <= 5; ++n) net.add(n, {}, {});
  net.elect(s1);
  REQUIRE(s1.role() == Role::leader);
  net.cut = {server(1)};
  for (int i = 0; i < 3 * 20 && s1.role() == Role::leader; ++i) {
    s1.tick();
    net.flush();
  }
  CHECK(s1.role() != Role::leader);
}

TEST_CASE("raft: followers learn of a commit from the leader at once, not at its next heartbeat", "[unit][raft]") {
  Net net;
  for (int n = 1; n <= 5; ++n) net.add(n, HardState{}, {});
  Raft& s1 = *net.nodes[server(1)];
  net.elect(s1);
  REQUIRE(s1.role() == Role::leader);
  net.flush();
  // With no tick in between, so no heartbeat: the quorum's acknowledgements
  // commit the entry on the leader, and the leader tells every follower.
  std::size_t commit_only_appends = 0;
  net.alter = [&](const NodeId&, Message m) {
    if (auto* append = std::get_if<AppendEntries>(&m); append != nullptr && append->entries.empty())
      ++commit_only_appends;
    return m;
  };
  auto index = s1.propose("x");
  REQUIRE(index);
  net.flush();
  REQUIRE(s1.commit_index() == *index);
  for (int n = 2; n <= 5; ++n) CHECK(net.nodes[server(n)]->commit_index() == *index);
  // One each, and quiet afterwards (no append answers an append forever).
  CHECK(commit_only_appends == 4);
}

TEST_CASE("raft: a pool's first leader writes its voter set so a restart needs no initial voters", "[unit][raft]") {
  const NodeId founder = server(1);
  Raft first(founder, {founder}, RaftConfig{}, 1);
  for (int i = 0; i < 100 && first.role() != Role::leader; ++i) first.tick();
  REQUIRE(first.role() == Role::leader);
  auto ready = first.take_ready();
  REQUIRE(ready.append.size() == 1);
  CHECK(ready.append[0].kind == Entry::Kind::config);
  CHECK(ready.committed.size() == 1);
  REQUIRE(ready.hard_state);
  CHECK(ready.hard_state->commit == 1);
  // Restarted with no initial voters (as p2pd does once it has state): the
  // log names it a voter, it wins again, and it resumes at its commit index.
  Raft again(founder, {}, RaftConfig{}, 2, *ready.hard_state, ready.append);
  CHECK(again.voters() == std::vector<NodeId>{founder});
  CHECK(again.commit_index() == 1);
  CHECK(again.take_ready().committed.size() == 1);  // re-applied from the log
  for (int i = 0; i < 100 && again.role() != Role::leader; ++i) again.tick();
  CHECK(again.role() == Role::leader);
  // Without state and without voters a node waits to be told: it never campaigns.
  Raft joiner(server(2), {}, RaftConfig{}, 3);
  for (int i = 0; i < 200; ++i) joiner.tick();
  CHECK(joiner.role() == Role::follower);
  CHECK(joiner.term() == 0);
}

TEST_CASE("raft: compaction keeps what is not applied and refuses to go past it", "[unit][raft]") {
  const NodeId self = server(1);
  Raft r(self, {self}, RaftConfig{}, 1);
  for (int i = 0; i < 100 && r.role() != Role::leader; ++i) r.tick();
  REQUIRE(r.role() == Role::leader);
  for (int i = 0; i < 5; ++i) REQUIRE(r.propose(fmt::format("c{}", i)));
  CHECK_FALSE(r.compact(6, "too early"));  // nothing handed out yet
  auto ready = r.take_ready();
  REQUIRE(ready.committed.size() == 6);
  REQUIRE(r.compact(4, "state@4"));
  CHECK(r.snapshot_index() == 4);
  CHECK(r.snapshot().voters == std::vector<NodeId>{self});
  CHECK(r.log().size() == 2);
  CHECK(r.entry(5).data == "c3");
  auto compacted = r.take_ready();
  REQUIRE(compacted.snapshot);
  CHECK_FALSE(compacted.restore_snapshot);
  CHECK(compacted.snapshot->data == "state@4");
  // A restart from that snapshot and the log after it.
  Raft again(self, {}, RaftConfig{}, 2, HardState{r.term(), self, 6}, r.log(), r.snapshot());
  CHECK(again.last_index() == 6);
  auto replay = again.take_ready();
  REQUIRE(replay.committed.size() == 2);
  CHECK(replay.committed.front().index == 5);
}
