// The unchanged Raft core on a simulated network: the classic scenarios
// (Ongaro's thesis, and the 6.824 test suite's list), with seed sweeps under
// loss, delay and reordering. After every step: at most one leader per
// term, committed prefixes never diverge, every leader holds every
// committed entry (RaftHistory).
#include <catch2/catch.hpp>

#include <algorithm>

#include "tests/sim/raft_node.hpp"
#include "tests/sim/seeds.hpp"

using namespace p2pd;
using namespace p2pd::sim;
using namespace std::chrono_literals;

namespace {

using RaftSim = Simulator<RaftEnvelope, RaftDurable>;

struct ClusterOptions {
  std::size_t voters = 0;  // the first `voters` nodes vote; 0: all of them
  std::size_t compact_every = 0;
};

struct Cluster {
  RaftHistory history;
  std::unique_ptr<RaftSim> sim;

  Cluster(std::uint64_t seed, std::size_t n, LinkModel link = LinkModel{1ms, 10ms, 0.0, 0.0},
          raft::RaftConfig config = raft::RaftConfig{}, ClusterOptions options = {}) {
    const std::size_t voters = options.voters == 0 ? n : options.voters;
    sim = std::make_unique<RaftSim>(
        SimConfig{seed, 50ms, link}, [this, voters, config, options](Address self, RaftDurable& durable, Rng& rng) {
          return std::make_unique<RaftNode>(self, voters, durable, rng, history, config, options.compact_every);
        });
    for (std::size_t i = 0; i < n; ++i) sim->add_node();
    sim->add_invariant("raft safety", [this] { return history.violation; });
  }

  raft::Raft* node(Address a) {
    auto* p = sim->process_as<RaftNode>(a);
    return p == nullptr ? nullptr : &p->raft();
  }

  // The one leader the live nodes that can reach it agree on, if any.
  std::optional<Address> leader() {
    std::optional<Address> found;
    raft::Term best = 0;
    for (Address a = 0; a < sim->size(); ++a) {
      auto* r = node(a);
      if (r != nullptr && r->role() == raft::Role::leader && r->term() >= best) {
        found = a;
        best = r->term();
      }
    }
    return found;
  }

  // Waits until a leader exists that every live node in `group` follows.
  std::optional<Address> wait_for_leader(Duration limit, const std::vector<Address>& group) {
    for (Duration waited{0}; waited <= limit; waited += 100ms) {
      if (auto l = leader(); l && std::find(group.begin(), group.end(), *l) != group.end()) {
        const raft::Term term = node(*l)->term();
        const bool agreed = std::all_of(group.begin(), group.end(), [&](Address a) {
          auto* r = node(a);
          return r == nullptr || (r->term() == term && r->leader() == raft_id(*l));
        });
        if (agreed) return l;
      }
      sim->run_for(100ms);
    }
    return std::nullopt;
  }

  std::vector<Address> all() const {
    std::vector<Address> out;
    for (Address a = 0; a < sim->size(); ++a) out.push_back(a);
    return out;
  }
  std::vector<Address> all_but(Address excluded) const {
    auto out = all();
    std::erase(out, excluded);
    return out;
  }

  // Proposes through the current leader, retrying until it commits (or the limit).
  bool commit(const std::string& command, Duration limit) {
    for (Duration waited{0}; waited <= limit; waited += 200ms) {
      if (auto l = leader()) {
        if (auto index = node(*l)->propose(command)) {
          for (int i = 0; i < 20; ++i) {
            sim->run_for(100ms);
            auto it = history.committed.find(*index);
            if (it != history.committed.end()) {
              if (it->second.data == command) return true;
              break;  // another entry won that index: propose again
            }
          }
          continue;
        }
      }
      sim->run_for(200ms);
    }
    return false;
  }
};

}  // namespace

TEST_CASE("raft: five nodes elect exactly one leader", "[sim][raft]") {
  for (auto seed : sweep_seeds(5)) {
    INFO("seed " << seed);
    Cluster c(seed, 5);
    const auto leader = c.wait_for_leader(10s, c.all());
    REQUIRE(leader);
    const raft::Term term = c.node(*leader)->term();
    // With nothing failing, the leader stays: no spurious elections.
    c.sim->run_for(30s);
    REQUIRE(c.leader() == leader);
    CHECK(c.node(*leader)->term() == term);
    CHECK_FALSE(c.sim->failure());
  }
}

TEST_CASE("raft: a new leader with a higher term after the leader fails", "[sim][raft]") {
  for (auto seed : sweep_seeds(5)) {
    INFO("seed " << seed);
    Cluster c(seed, 5, LinkModel{1ms, 20ms, 0.02, 0.01});
    auto leader = c.wait_for_leader(10s, c.all());
    REQUIRE(leader);
    for (int round = 0; round < 3; ++round) {
      const raft::Term before = c.node(*leader)->term();
      c.sim->crash(*leader);
      std::vector<Address> rest;
      for (auto a : c.all()) {
        if (c.sim->is_up(a)) rest.push_back(a);
      }
      auto next = c.wait_for_leader(10s, rest);
      REQUIRE(next);
      CHECK(c.node(*next)->term() > before);
      c.sim->restart(*leader);  // back from its durable state, as a follower
      leader = c.wait_for_leader(10s, c.all());
      REQUIRE(leader);
    }
    CHECK_FALSE(c.sim->failure());
  }
}

TEST_CASE("raft: no leader without a quorum, and pre-vote keeps terms still", "[sim][raft]") {
  Cluster c(3, 5);
  auto leader = c.wait_for_leader(10s, c.all());
  REQUIRE(leader);
  const auto others = c.all_but(*leader);
  // Crash three (the leader among them): two cannot elect anyone.
  c.sim->crash(*leader);
  c.sim->crash(others[0]);
  c.sim->crash(others[1]);
  const raft::Term term = c.node(others[2])->term();
  c.sim->run_for(60s);
  CHECK_FALSE(c.leader());
  // Pre-vote never won, so nobody raised its term while cut off (thesis §9.6).
  CHECK(c.node(others[2])->term() == term);
  CHECK(c.node(others[3])->term() == term);
  // Quorum back: a leader again.
  c.sim->restart(others[0]);
  CHECK(c.wait_for_leader(15s, {others[0], others[2], others[3]}));
  CHECK_FALSE(c.sim->failure());
}

TEST_CASE("raft: a partitioned old leader steps down and rejoins without disrupting", "[sim][raft]") {
  for (auto seed : sweep_seeds(3)) {
    INFO("seed " << seed);
    Cluster c(seed, 5);
    auto old = c.wait_for_leader(10s, c.all());
    REQUIRE(old);
    REQUIRE(c.commit("before", 10s));
    const auto majority = c.all_but(*old);
    c.sim->partition({{*old}, majority});
    // Its proposal can never commit.
    REQUIRE(c.node(*old)->propose("lost").has_value());
    auto fresh = c.wait_for_leader(10s, majority);
    REQUIRE(fresh);
    c.sim->run_for(5s);
    CHECK(c.node(*old)->role() != raft::Role::leader);  // check-quorum made it step down
    INFO("sim failure: " << c.sim->failure().value_or("none"));
    REQUIRE(c.commit("after", 10s));
    c.sim->heal();
    auto now = c.wait_for_leader(10s, c.all());
    REQUIRE(now);
    CHECK(*now != *old);
    CHECK(c.commit("healed", 10s));
    for (const auto& [index, entry] : c.history.committed) CHECK(entry.data != "lost");
    CHECK_FALSE(c.sim->failure());
  }
}

TEST_CASE("raft: agreement through crashes, partitions and an unreliable network", "[sim][raft]") {
  // Figure 8 under an unreliable network, in the spirit of 6.824's
  // TestFigure8Unreliable: random crashes, restarts and partitions while
  // commands are proposed; the checkers run after every event, and once
  // the network is whole again every node holds the same committed log.
  // Run again with frequent snapshots sent in small chunks (6.824's
  // TestSnapshotUnreliableRecoverConcurrentPartition).
  raft::RaftConfig small_chunks;
  small_chunks.snapshot_chunk_bytes = 5;
  const std::vector<std::pair<raft::RaftConfig, ClusterOptions>> variants{{raft::RaftConfig{}, ClusterOptions{}},
                                                                          {small_chunks, ClusterOptions{0, 7}}};
  for (const auto& [config, options] : variants)
    for (auto seed : sweep_seeds(4)) {
      INFO("seed " << seed << ", compact every " << options.compact_every);
      Cluster c(seed, 5, LinkModel{1ms, 40ms, 0.05, 0.02}, config, options);
      Rng chaos(seed * 101);
      REQUIRE(c.wait_for_leader(10s, c.all()));
      std::size_t proposed = 0;
      for (int step = 0; step < 120; ++step) {
        if (auto l = c.leader()) {
          if (c.node(*l)->propose(fmt::format("cmd-{}", proposed)).has_value()) ++proposed;
        }
        const auto dice = chaos.uniform(0, 9);
        const auto victim = static_cast<Address>(chaos.uniform(0, 4));
        if (dice == 0 && c.sim->is_up(victim)) {
          std::size_t up = 0;
          for (auto a : c.all()) up += c.sim->is_up(a) ? 1 : 0;
          if (up > 3) c.sim->crash(victim);
        } else if (dice == 1 && !c.sim->is_up(victim)) {
          c.sim->restart(victim);
        } else if (dice == 2) {
          std::vector<Address> a, b;
          for (auto n : c.all()) (chaos.chance(0.5) ? a : b).push_back(n);
          c.sim->partition({a, b});
        } else if (dice == 3) {
          c.sim->heal();
        }
        c.sim->run_for(std::chrono::milliseconds(chaos.uniform(50, 800)));
        REQUIRE_FALSE(c.sim->failure());
      }
      c.sim->heal();
      for (auto a : c.all()) {
        if (!c.sim->is_up(a)) c.sim->restart(a);
      }
      REQUIRE(c.wait_for_leader(20s, c.all()));
      REQUIRE(c.commit("final", 20s));
      c.sim->run_for(5s);
      const raft::Index final_index = c.history.committed.rbegin()->first;
      for (auto a : c.all()) {
        INFO("node " << a);
        CHECK(c.node(a)->commit_index() == final_index);
      }
      INFO("proposed " << proposed << ", committed " << c.history.committed.size());
      CHECK(c.history.committed.size() > 10);
      CHECK_FALSE(c.sim->failure());
    }
}

TEST_CASE("raft: a follower far behind on a divergent log catches up quickly", "[sim][raft]") {
  // Fast backup (thesis §5.3): a leader with many uncommitted entries in
  // an old term is cut off; the majority commits many in new terms; the old
  // leader returns and its divergent suffix is replaced.
  raft::RaftConfig config;
  config.max_entries_per_append = 16;
  Cluster c(7, 5, LinkModel{1ms, 10ms, 0.0, 0.0}, config);
  auto old = c.wait_for_leader(10s, c.all());
  REQUIRE(old);
  const auto majority = c.all_but(*old);
  c.sim->partition({{*old}, majority});
  for (int i = 0; i < 200; ++i) REQUIRE(c.node(*old)->propose(fmt::format("stale-{}", i)).has_value());
  REQUIRE(c.wait_for_leader(10s, majority));
  for (int i = 0; i < 100; ++i) {
    if (auto l = c.leader(); l && *l != *old) (void)c.node(*l)->propose(fmt::format("new-{}", i));
  }
  REQUIRE(c.commit("last", 10s));
  c.sim->heal();
  const auto before = c.sim->stats().sent;
  REQUIRE(c.wait_for_leader(10s, c.all()));
  c.sim->run_for(3s);
  CHECK(c.node(*old)->commit_index() == c.history.committed.rbegin()->first);
  CHECK(c.node(*old)->log() == c.node(*c.leader())->log());
  INFO("messages to catch up: " << c.sim->stats().sent - before);
  CHECK_FALSE(c.sim->failure());
}

TEST_CASE("raft: leadership transfer hands over within one round trip of elections", "[sim][raft]") {
  for (auto seed : sweep_seeds(3)) {
    INFO("seed " << seed);
    Cluster c(seed, 5);
    auto leader = c.wait_for_leader(10s, c.all());
    REQUIRE(leader);
    REQUIRE(c.commit("before", 10s));
    const Address target = (*leader + 1) % 5;
    const raft::Term term = c.node(*leader)->term();
    REQUIRE(c.node(*leader)->transfer_leadership(raft_id(target)));
    CHECK_FALSE(c.node(*leader)->propose("refused while transferring").has_value());
    // Far sooner than an election timeout (1 s at these settings).
    c.sim->run_for(300ms);
    REQUIRE(c.leader() == std::optional<Address>(target));
    CHECK(c.node(target)->term() == term + 1);
    CHECK(c.commit("after", 10s));
    CHECK_FALSE(c.sim->failure());
  }
}

TEST_CASE("raft: voters are removed and added one at a time, the leader included", "[sim][raft]") {
  for (auto seed : sweep_seeds(3)) {
    INFO("seed " << seed);
    Cluster c(seed, 5, LinkModel{1ms, 20ms, 0.02, 0.0});
    auto leader = c.wait_for_leader(10s, c.all());
    REQUIRE(leader);
    const Address removed = (*leader + 2) % 5;
    REQUIRE(c.commit("first", 10s));
    leader = c.leader();
    REQUIRE(leader);
    auto removal = c.node(*leader)->remove_voter(raft_id(removed));
    INFO((removal ? std::string("ok") : removal.error().message));
    REQUIRE(removal);
    // A second change waits for the first to commit.
    CHECK_FALSE(c.node(*leader)->remove_voter(raft_id((*leader + 3) % 5)));
    REQUIRE(c.commit("without one", 10s));
    for (auto a : c.all()) {
      if (a != removed) CHECK(c.node(a)->voters().size() == 4);
    }
    // Four voters: the removed node's silence no longer matters, and two
    // more failures would (quorum 3 of 4).
    c.sim->crash(removed);
    REQUIRE(c.commit("still four", 10s));
    c.sim->restart(removed);
    leader = c.leader();
    REQUIRE(leader);
    REQUIRE(c.node(*leader)->add_voter(raft_id(removed)));
    REQUIRE(c.commit("five again", 10s));
    c.sim->run_for(2s);
    CHECK(c.node(removed)->voters().size() == 5);
    // The leader removes itself: it steps down once that commits.
    leader = c.leader();
    REQUIRE(leader);
    const Address old = *leader;
    REQUIRE(c.node(old)->remove_voter(raft_id(old)));
    const auto rest = c.all_but(old);
    auto next = c.wait_for_leader(10s, rest);
    REQUIRE(next);
    CHECK(*next != old);
    CHECK(c.node(old)->role() != raft::Role::leader);
    CHECK(c.commit("after the leader left", 10s));
    CHECK_FALSE(c.sim->failure());
  }
}

TEST_CASE("raft: a follower behind the leader's snapshot catches up through it", "[sim][raft]") {
  raft::RaftConfig config;
  config.snapshot_chunk_bytes = 4;  // the simulated state is ~25 bytes: several chunks
  for (auto seed : sweep_seeds(3)) {
    INFO("seed " << seed);
    Cluster c(seed, 5, LinkModel{1ms, 20ms, 0.03, 0.02}, config, ClusterOptions{0, 10});
    auto leader = c.wait_for_leader(10s, c.all());
    REQUIRE(leader);
    const Address lagging = (*leader + 1) % 5;
    c.sim->crash(lagging);
    for (int i = 0; i < 60; ++i) REQUIRE(c.commit(fmt::format("while away {}", i), 10s));
    leader = c.leader();
    REQUIRE(leader);
    REQUIRE(c.node(*leader)->snapshot_index() > 20);  // the entries it missed are gone
    c.sim->restart(lagging);
    REQUIRE(c.commit("back", 10s));
    c.sim->run_for(3s);
    const raft::Index final_index = c.history.committed.rbegin()->first;
    auto* node = c.sim->process_as<RaftNode>(lagging);
    CHECK(node->raft().commit_index() == final_index);
    CHECK(node->raft().snapshot_index() > 0);
    // Its state machine passed the digest checks on the way (RaftHistory).
    CHECK(node->state().index == final_index);
    CHECK_FALSE(c.sim->failure());
  }
}

TEST_CASE("raft: learners follow the log and know the leader but never vote", "[sim][raft]") {
  Cluster c(11, 5, LinkModel{1ms, 10ms, 0.0, 0.0}, raft::RaftConfig{}, ClusterOptions{3, 0});
  const std::vector<Address> voters{0, 1, 2};
  auto leader = c.wait_for_leader(10s, voters);
  REQUIRE(leader);
  c.node(*leader)->set_learners({raft_id(3), raft_id(4), raft_id(*leader)});
  CHECK(c.node(*leader)->learners().size() == 2);  // itself is not a learner
  REQUIRE(c.commit("seen by learners", 10s));
  c.sim->run_for(1s);
  for (Address learner : {3, 4}) {
    INFO("learner " << learner);
    CHECK(c.node(learner)->commit_index() == c.node(*leader)->commit_index());
    CHECK(c.node(learner)->leader() == raft_id(*leader));
    CHECK_FALSE(c.node(learner)->is_voter(raft_id(learner)));
  }
  // Without the voters, learners elect nobody and keep their term.
  const raft::Term term = c.node(3)->term();
  for (auto v : voters) c.sim->crash(v);
  c.sim->run_for(20s);
  CHECK_FALSE(c.leader());
  CHECK(c.node(3)->term() == term);
  CHECK(c.node(4)->role() == raft::Role::follower);
  for (auto v : voters) c.sim->restart(v);
  leader = c.wait_for_leader(10s, voters);
  REQUIRE(leader);
  // A learner promoted to voter takes part from then on.
  c.node(*leader)->set_learners({raft_id(3), raft_id(4)});
  REQUIRE(c.node(*leader)->add_voter(raft_id(3)));
  REQUIRE(c.commit("four voters", 10s));
  c.sim->run_for(1s);
  CHECK(c.node(3)->is_voter(raft_id(3)));
  CHECK(c.node(*leader)->voters().size() == 4);
  CHECK_FALSE(c.sim->failure());
}

TEST_CASE("raft: agreement goes on with failed followers and they catch up when back", "[sim][raft]") {
  for (auto seed : sweep_seeds(3)) {
    INFO("seed " << seed);
    Cluster c(seed, 5, LinkModel{1ms, 20ms, 0.02, 0.02});
    auto leader = c.wait_for_leader(10s, c.all());
    REQUIRE(leader);
    REQUIRE(c.commit("all here", 10s));
    // Two followers fail: three of five still commit.
    const Address f1 = (*leader + 1) % 5, f2 = (*leader + 2) % 5;
    c.sim->crash(f1);
    c.sim->crash(f2);
    for (int i = 0; i < 10; ++i) REQUIRE(c.commit(fmt::format("two down {}", i), 10s));
    // A third: no majority, nothing commits (6.824's TestFailNoAgree).
    const Address f3 = (*leader + 3) % 5;
    c.sim->crash(f3);
    const auto committed_before = c.history.committed.size();
    if (auto l = c.leader()) (void)c.node(*l)->propose("without a majority");
    c.sim->run_for(5s);
    CHECK(c.history.committed.size() == committed_before);
    // Back: the uncommitted entry may commit now or be replaced, and the
    // returning followers catch up with everything.
    for (auto f : {f1, f2, f3}) c.sim->restart(f);
    REQUIRE(c.wait_for_leader(10s, c.all()));
    REQUIRE(c.commit("all back", 10s));
    c.sim->run_for(2s);
    const raft::Index final_index = c.history.committed.rbegin()->first;
    for (auto a : c.all()) CHECK(c.node(a)->commit_index() == final_index);
    CHECK_FALSE(c.sim->failure());
  }
}
