// Raft among real p2pd processes on loopback (issue 4's "Done when"): five
// daemons elect a leader with five voters; over five SIGKILLs of the
// current leader the survivors agree on a new leader with a higher term,
// each killed node restarts from its state dir on a new port and rejoins as
// a follower, and no node's commit index ever goes back. Also: a silent
// voter is replaced by another peer, and a leader that leaves hands over at
// once. The failover figures are printed (ctest -V, or the binary).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

#include <fmt/format.h>

#include "tests/support/daemon_pool.hpp"

using namespace p2pd::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

struct RaftPool : DaemonPool {
  // The highest commit index each node (by id, across restarts) has shown.
  std::map<std::string, std::uint64_t> commit_seen;
  std::vector<std::string> commit_regressions;

  explicit RaftPool(std::vector<std::string> common_args = {}) : m_common(std::move(common_args)) {}

  bool start(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      auto args = m_common;
      if (i > 0) args.insert(args.end(), {"--bootstrap", listen[0]});
      if (!add(args)) return false;
    }
    return true;
  }

  // `p2pctl leader` on node i, with the commit-index check applied.
  json leader_view(std::size_t i) {
    json view = daemons[i]->ctl_json({"leader"});
    if (!view.is_object()) return view;
    const auto commit = view["commit_index"].get<std::uint64_t>();
    auto& seen = commit_seen[ids[i]];
    if (commit < seen) {
      commit_regressions.push_back(fmt::format("node {} went from commit {} to {}", i, seen, commit));
    }
    seen = std::max(seen, commit);
    return view;
  }

  // The index of the node every live node names as leader, in one term, if
  // they agree and it calls itself leader; `min_term` excludes older terms.
  std::optional<std::size_t> agreed_leader(std::uint64_t min_term, const std::string& not_id = {}) {
    std::optional<std::string> leader;
    std::optional<std::uint64_t> term;
    std::vector<json> views;
    for (auto i : live()) {
      json view = leader_view(i);
      if (!view.is_object() || view["leader_id"].is_null()) return std::nullopt;
      const auto id = view["leader_id"].get<std::string>();
      const auto t = view["term"].get<std::uint64_t>();
      if ((leader && *leader != id) || (term && *term != t) || t < min_term || id == not_id) return std::nullopt;
      leader = id;
      term = t;
      views.push_back(std::move(view));
    }
    if (!leader) return std::nullopt;
    const auto at = std::find(ids.begin(), ids.end(), *leader) - ids.begin();
    if (static_cast<std::size_t>(at) >= ids.size() || !alive[static_cast<std::size_t>(at)]) return std::nullopt;
    return static_cast<std::size_t>(at);
  }

  std::optional<std::size_t> wait_for_leader(std::chrono::seconds limit, std::uint64_t min_term = 0,
                                             const std::string& not_id = {}) {
    const auto start = Clock::now();
    while (Clock::now() - start < limit) {
      if (auto l = agreed_leader(min_term, not_id)) return l;
      std::this_thread::sleep_for(50ms);
    }
    return std::nullopt;
  }

  // Waits until `leader` has five voters and some node is a learner that
  // follows it; that node.
  std::optional<std::size_t> wait_for_learner(std::size_t leader, std::chrono::seconds limit) {
    std::optional<std::size_t> learner;
    eventually(
        [&] {
          const json view = leader_view(leader);
          if (!view.is_object() || view["voters"].size() != 5) return false;
          for (auto i : live()) {
            const json mine = leader_view(i);
            if (mine.is_object() && mine["role"] == "learner" && mine["leader_id"] == ids[leader]) learner = i;
          }
          return learner.has_value();
        },
        limit);
    return learner;
  }

  // Every other live node lists node i at its current address.
  bool all_know_address_of(std::size_t i) {
    for (auto j : live()) {
      if (j == i) continue;
      const json peers = daemons[j]->ctl_json({"peers"});
      if (!peers.is_object()) return false;
      const auto& list = peers["peers"];
      const bool known = std::any_of(list.begin(), list.end(),
                                     [&](const json& p) { return p["node_id"] == ids[i] && p["addr"] == listen[i]; });
      if (!known) return false;
    }
    return true;
  }

  // Every live node's view, for a failure message.
  std::string describe() {
    std::string out;
    for (auto i : live()) {
      const json view = daemons[i]->ctl_json({"leader"});
      out += fmt::format("node {} ({}): {}\n", i, ids[i].substr(0, 12), view.dump());
    }
    return out;
  }

  // Restarts node i from its state dir on a new port, joining through `via`.
  bool restart(std::size_t i, std::size_t via) {
    auto args = m_common;
    args.insert(args.end(), {"--bootstrap", listen[via]});
    daemons[i]->set_extra_args(args);
    if (!daemons[i]->start()) return false;
    const json status = daemons[i]->status_json();
    if (status["node_id"] != ids[i]) return false;  // the identity must come back from the state dir
    listen[i] = status["listen"].get<std::string>();
    alive[i] = true;
    return true;
  }

 private:
  std::vector<std::string> m_common;
};

}  // namespace

TEST_CASE("5 daemons keep one leader with 5 voters through 5 SIGKILLs of the leader", "[integration][raft]") {
  // Snapshots every 2 entries: restarts load one, and a node behind gets
  // the leader's instead of the entries (InstallSnapshot), on every round.
  RaftPool pool({"--raft-snapshot-entries", "2"});
  REQUIRE(pool.start(5));
  auto leader = pool.wait_for_leader(30s);
  REQUIRE(leader);
  // Every node a voter: the first bootstrapped alone, the leader added the rest.
  REQUIRE(eventually(
      [&] {
        const json view = pool.leader_view(*leader);
        return view.is_object() && view["voters"].size() == 5;
      },
      30s));
  for (auto i : pool.live()) {
    const json view = pool.leader_view(i);
    CHECK(view["role"] == (i == *leader ? "leader" : "follower"));
    CHECK(pool.daemons[i]->status_json()["leader_id"] == pool.ids[*leader]);
  }

  std::vector<double> failovers;
  for (int round = 0; round < 5; ++round) {
    INFO("round " << round);
    const std::size_t victim = *leader;
    const std::string victim_id = pool.ids[victim];
    const std::string old_listen = pool.listen[victim];
    const auto old_term = pool.leader_view(victim)["term"].get<std::uint64_t>();
    pool.kill(victim);
    const auto killed_at = Clock::now();
    leader = pool.wait_for_leader(20s, old_term + 1, victim_id);
    if (!leader) FAIL("no agreed leader 20 s after the kill:\n" << pool.describe());
    failovers.push_back(seconds_since(killed_at));
    fmt::print("[raft figures] kill {}: new leader {} in term {} after {:.2f} s\n", round + 1,
               pool.ids[*leader].substr(0, 12), pool.leader_view(*leader)["term"].get<std::uint64_t>(),
               failovers.back());

    // Back from its state dir on a new port: a follower of the new leader.
    REQUIRE(pool.restart(victim, *leader));
    // It resumed from its own snapshot: the last start-up line names its index.
    const std::string log = pool.daemons[victim]->log();
    const auto at = log.rfind("(snapshot at ");
    REQUIRE(at != std::string::npos);
    CHECK(std::stoull(log.substr(at + 13, 20)) > 0);
    CHECK(pool.listen[victim] != old_listen);
    const bool follows = eventually(
        [&] {
          const json view = pool.leader_view(victim);
          return view.is_object() && view["role"] == "follower" && view["leader_id"] == pool.ids[*leader];
        },
        20s);
    INFO(pool.daemons[victim]->log().substr(0, 4000));
    REQUIRE(follows);
    // Everyone, the restarted node included, agrees again, and knows where
    // the restarted node serves now (it introduces itself to the voters).
    leader = pool.wait_for_leader(20s);
    if (!leader) FAIL("no agreed leader after the restart:\n" << pool.describe());
    CHECK(eventually([&] { return pool.all_know_address_of(victim); }, 20s));
  }
  std::sort(failovers.begin(), failovers.end());
  const double median = failovers[failovers.size() / 2];
  fmt::print(
      "[raft figures] failover over {} leader kills: median {:.2f} s (target <= 2.5), max {:.2f} s "
      "(target <= 5)\n",
      failovers.size(), median, failovers.back());
  // Generous bounds here; the figures above are the measurement.
  CHECK(median <= 5.0);
  CHECK(failovers.back() <= 10.0);
  INFO(fmt::format("{}", fmt::join(pool.commit_regressions, "; ")));
  CHECK(pool.commit_regressions.empty());
  const json final_view = pool.leader_view(*leader);
  CHECK(final_view["voters"].size() == 5);
  CHECK(final_view.value("snapshot_index", 0) > 0);
  std::size_t installed = 0;
  for (const auto& d : pool.daemons) {
    const std::string log = d->log();
    for (auto at = log.find("installed the leader's snapshot"); at != std::string::npos;
         at = log.find("installed the leader's snapshot", at + 1)) {
      ++installed;
    }
  }
  fmt::print("[raft figures] snapshots installed from a leader (InstallSnapshot): {}\n", installed);
  CHECK(installed > 0);
  // Every node ends on the same commit index, through entries or snapshots.
  CHECK(eventually(
      [&] {
        const auto commit = pool.leader_view(*leader)["commit_index"];
        const auto nodes = pool.live();
        return std::all_of(nodes.begin(), nodes.end(),
                           [&](std::size_t i) { return pool.leader_view(i)["commit_index"] == commit; });
      },
      10s));
}

TEST_CASE("a voter silent past --raft-voter-timeout is replaced by another peer", "[integration][raft]") {
  RaftPool pool({"--raft-voter-timeout", "3"});
  REQUIRE(pool.start(6));
  auto leader = pool.wait_for_leader(30s);
  REQUIRE(leader);
  const auto learner = pool.wait_for_learner(*leader, 30s);  // five voters and one learner
  REQUIRE(learner);
  const std::size_t victim = (*leader + 1) % 6 == *learner ? (*leader + 2) % 6 : (*leader + 1) % 6;
  pool.kill(victim);
  const auto killed_at = Clock::now();
  const bool replaced = eventually(
      [&] {
        const json view = pool.leader_view(*leader);
        if (!view.is_object()) return false;
        const auto& voters = view["voters"];
        const bool victim_out = std::find(voters.begin(), voters.end(), pool.ids[victim]) == voters.end();
        const bool learner_in = std::find(voters.begin(), voters.end(), pool.ids[*learner]) != voters.end();
        return victim_out && learner_in && voters.size() == 5;
      },
      30s);
  REQUIRE(replaced);
  fmt::print("[raft figures] a killed voter replaced after {:.1f} s (voter timeout 3 s)\n", seconds_since(killed_at));
  CHECK(pool.leader_view(*learner)["role"] == "follower");
  // Back, it is a learner now: the pool already has its five voters.
  REQUIRE(pool.restart(victim, *leader));
  CHECK(eventually(
      [&] {
        const json view = pool.leader_view(victim);
        return view.is_object() && view["role"] == "learner" && view["leader_id"] == pool.ids[*leader];
      },
      20s));
}

TEST_CASE("a voter that leaves is replaced at once and not after its silence", "[integration][raft]") {
  RaftPool pool;  // the default --raft-voter-timeout: 30 s
  REQUIRE(pool.start(6));
  auto leader = pool.wait_for_leader(30s);
  REQUIRE(leader);
  const auto learner = pool.wait_for_learner(*leader, 30s);
  REQUIRE(learner);
  const std::size_t leaver = (*leader + 1) % 6 == *learner ? (*leader + 2) % 6 : (*leader + 1) % 6;
  const auto left_at = Clock::now();
  REQUIRE(pool.daemons[leaver]->ctl({"leave"}).status.exited_with(0));
  CHECK(pool.daemons[leaver]->process().wait_for(10s).has_value());
  pool.alive[leaver] = false;
  const bool replaced = eventually(
      [&] {
        const json view = pool.leader_view(*leader);
        if (!view.is_object()) return false;
        const auto& voters = view["voters"];
        return voters.size() == 5 && std::find(voters.begin(), voters.end(), pool.ids[leaver]) == voters.end() &&
               std::find(voters.begin(), voters.end(), pool.ids[*learner]) != voters.end();
      },
      10s);
  REQUIRE(replaced);
  fmt::print("[raft figures] a voter that left replaced after {:.2f} s (voter timeout 30 s)\n", seconds_since(left_at));
}

TEST_CASE("a leader that leaves hands leadership over without an election timeout", "[integration][raft]") {
  RaftPool pool;
  REQUIRE(pool.start(3));
  auto leader = pool.wait_for_leader(30s);
  REQUIRE(leader);
  REQUIRE(eventually([&] { return pool.leader_view(*leader)["voters"].size() == 3; }, 30s));
  const std::string old_id = pool.ids[*leader];
  const auto old_term = pool.leader_view(*leader)["term"].get<std::uint64_t>();
  const auto left_at = Clock::now();
  const auto result = pool.daemons[*leader]->ctl({"leave"});
  REQUIRE(result.status.exited_with(0));
  CHECK(pool.daemons[*leader]->process().wait_for(10s).has_value());
  pool.alive[*leader] = false;
  auto next = pool.wait_for_leader(10s, old_term + 1, old_id);
  REQUIRE(next);
  fmt::print("[raft figures] leader left; new leader agreed after {:.2f} s\n", seconds_since(left_at));
  const json view = pool.leader_view(*next);
  CHECK(view["voters"].size() == 2);
  CHECK(std::find(view["voters"].begin(), view["voters"].end(), old_id) == view["voters"].end());
}
