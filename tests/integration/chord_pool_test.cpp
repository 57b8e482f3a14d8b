// A Chord ring of real p2pd processes on loopback, driven through p2pctl
// (issue 3's "Done when"): the ring forms and orders itself, lookups agree
// with the sorted ids in about ½·log2 N hops, the ring heals after SIGKILLs,
// and a key outlives the death of any single holder. The figures are
// printed (run with ctest -V, or the binary directly) for the record.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "tests/support/daemon_pool.hpp"

using namespace p2pd::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

struct Pool : DaemonPool {
  // Starts `n` daemons: the first a new pool, each other through a random
  // earlier one (as volunteers join through whoever they know).
  bool start(std::size_t n, std::mt19937& rng) {
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<std::string> args;
      if (i > 0) args = {"--bootstrap", listen[std::uniform_int_distribution<std::size_t>(0, i - 1)(rng)]};
      if (!add(args)) return false;
    }
    return true;
  }

  // Live ids in ring order.
  [[nodiscard]] std::vector<std::string> sorted_ids() const {
    std::vector<std::string> out;
    for (auto i : live()) out.push_back(ids[i]);
    std::sort(out.begin(), out.end());  // lowercase hex of equal length sorts as the numbers do
    return out;
  }

  // Every live node's successor and predecessor are the next and previous
  // live ids. Empty when ordered, else what is wrong.
  [[nodiscard]] std::string ring_disorder() const {
    const auto sorted = sorted_ids();
    const std::size_t n = sorted.size();
    for (auto i : live()) {
      const json ring = daemons[i]->ctl_json({"ring"});
      if (!ring.is_object()) return fmt::format("node {} did not answer `ring`", i);
      const auto at = std::find(sorted.begin(), sorted.end(), ids[i]) - sorted.begin();
      const auto& want_succ = sorted[static_cast<std::size_t>(at + 1) % n];
      const auto& want_pred = sorted[static_cast<std::size_t>(at + static_cast<long>(n) - 1) % n];
      if (ring["successors"].empty() || ring["successors"][0]["node_id"] != want_succ)
        return fmt::format("node {} has the wrong successor", i);
      if (!ring["predecessor"].is_object() || ring["predecessor"]["node_id"] != want_pred)
        return fmt::format("node {} has the wrong predecessor", i);
    }
    return {};
  }

  [[nodiscard]] std::string true_owner(const std::string& key) const {
    const auto sorted = sorted_ids();
    auto it = std::lower_bound(sorted.begin(), sorted.end(), key);
    return it == sorted.end() ? sorted.front() : *it;
  }

  // Polls until the ring is ordered; the seconds it took, or -1.
  double wait_ordered(std::chrono::seconds limit, std::string& why) const {
    const auto start = Clock::now();
    while (Clock::now() - start < limit) {
      why = ring_disorder();
      if (why.empty()) return seconds_since(start);
      std::this_thread::sleep_for(500ms);
    }
    return -1;
  }

  // `wrong`: answered with an owner that is not the key's successor, a
  // routing bug. `unanswered`: the call itself failed (a hop timed out on a
  // machine that runs 24 daemons beside other tests): a few are tolerated.
  struct LookupFigures {
    std::size_t wrong = 0;
    std::size_t unanswered = 0;
    double mean_hops = 0;
  };
  LookupFigures lookups(std::size_t count, std::mt19937& rng) const {
    LookupFigures figures;
    std::size_t hops = 0;
    const auto nodes = live();
    for (std::size_t k = 0; k < count; ++k) {
      std::string key;
      for (int d = 0; d < 40; ++d) key += "0123456789abcdef"[std::uniform_int_distribution<int>(0, 15)(rng)];
      const auto from = nodes[std::uniform_int_distribution<std::size_t>(0, nodes.size() - 1)(rng)];
      const auto result = daemons[from]->ctl({"--json", "lookup", key});
      if (!result.status.exited_with(0)) {
        ++figures.unanswered;
        std::string why = result.err;
        while (!why.empty() && why.back() == '\n') why.pop_back();
        fmt::print("[chord] lookup of {} from node {} got no answer: {}\n", key, from, why);
        continue;
      }
      const json answer = json::parse(result.out, nullptr, false);
      if (!answer.is_object() || answer["key"] != key || answer["owner"]["node_id"] != true_owner(key)) {
        ++figures.wrong;
        fmt::print("[chord] lookup of {} from node {}: {} (the owner is {})\n", key, from, answer.dump(),
                   true_owner(key));
        continue;
      }
      hops += answer["hops"].get<std::size_t>();
      CHECK(answer["path"].size() == answer["hops"].get<std::size_t>());
    }
    const std::size_t answered = count - figures.unanswered - figures.wrong;
    figures.mean_hops = answered == 0 ? 0.0 : static_cast<double>(hops) / static_cast<double>(answered);
    return figures;
  }
};

}  // namespace

TEST_CASE("24 daemons form an ordered ring that routes lookups and heals after 6 SIGKILLs",
          "[integration][chord][serial]") {
  constexpr std::size_t kNodes = 24, kKills = 6;
  std::mt19937 rng(24);
  Pool pool;
  const auto started = Clock::now();
  REQUIRE(pool.start(kNodes, rng));
  const double spawned = seconds_since(started);
  std::string why;
  const double ordered = pool.wait_ordered(120s, why);
  INFO(why);
  REQUIRE(ordered >= 0);
  fmt::print(
      "[chord figures] {} daemons started in {:.1f} s; ring ordered {:.1f} s after the last started "
      "({:.1f} s after the first)\n",
      kNodes, spawned, ordered, spawned + ordered);
  // Generous: a sanitizer build on two busy cores took 57 s here (10 to 20 s is usual).
  CHECK(spawned + ordered <= 90.0 * p2pd::test::slowdown());

  // Fingers are complete one fix_fingers round after the ring is ordered.
  std::this_thread::sleep_for(8s);
  const auto before = pool.lookups(300, rng);
  const double bound = 0.5 * std::log2(static_cast<double>(kNodes)) + 0.5;
  fmt::print(
      "[chord figures] 300 lookups on {} nodes: {} wrong, {} unanswered, mean hops {:.2f} (bound ½·log2 N + 0.5 = "
      "{:.2f})\n",
      kNodes, before.wrong, before.unanswered, before.mean_hops, bound);
  CHECK(before.wrong == 0);
  CHECK(before.unanswered <= 3);
  CHECK(before.mean_hops <= bound);

  // Keys put before the kills. A holder that does not answer a write within
  // the request timeout (2 s; a loaded sanitizer build can miss it, as it can
  // a lookup hop above) leaves the put with two copies, which the next sync
  // round repairs: allowed for at most two of the twenty puts.
  std::vector<std::string> keys;
  std::vector<std::vector<std::string>> holders;  // by key: the nodes meant to store it
  std::vector<bool> stored_thrice;                // the put reached all three
  std::size_t short_puts = 0;
  for (int k = 0; k < 20; ++k) {
    keys.push_back(fmt::format("before-kills-{}", k));
    const json put =
        pool.daemons[static_cast<std::size_t>(k) % kNodes]->ctl_json({"put", keys.back(), "v" + keys.back()});
    INFO(put.dump());
    REQUIRE(put.is_object());
    CHECK(put["holders"].size() == 3);
    CHECK(put["copies"] >= 2);
    stored_thrice.push_back(put["copies"] == 3);
    if (!stored_thrice.back()) {
      ++short_puts;
      fmt::print("[chord] put of {} reached {} of 3 holders\n", keys.back(), put["copies"].dump());
    }
    holders.emplace_back();
    for (const auto& h : put["holders"]) holders.back().push_back(h["node_id"].get<std::string>());
  }
  CHECK(short_puts <= 2);

  // Six at once; node 0 (everyone's bootstrap fallback) among the candidates too.
  std::vector<std::size_t> victims = pool.live();
  std::shuffle(victims.begin(), victims.end(), rng);
  victims.resize(kKills);
  const auto killed_at = Clock::now();
  for (auto v : victims) pool.kill(v);
  const double healed = pool.wait_ordered(120s, why);
  INFO(why);
  REQUIRE(healed >= 0);
  fmt::print("[chord figures] {} daemons SIGKILLed at once: ring ordered again after {:.1f} s\n", kKills,
             seconds_since(killed_at));
  CHECK(healed <= 60.0);  // 5 to 12 s is usual; generous for a loaded sanitizer build
  const auto after = pool.lookups(100, rng);
  fmt::print("[chord figures] 100 lookups on the {} survivors: {} wrong, {} unanswered, mean hops {:.2f}\n",
             kNodes - kKills, after.wrong, after.unanswered, after.mean_hops);
  CHECK(after.wrong == 0);
  CHECK(after.unanswered <= 1);

  // Keys whose three holders were not all among the six are still there
  // (with k = 3, six kills at once can take every copy of a key). A key put
  // to two holders only may have lost both before a sync round copied it
  // to the third: it is read, but not counted on.
  const auto nodes = pool.live();
  std::size_t readable = 0, survivable = 0;
  for (std::size_t k = 0; k < keys.size(); ++k) {
    const bool a_holder_lives = std::any_of(holders[k].begin(), holders[k].end(), [&](const std::string& id) {
      const auto at = static_cast<std::size_t>(std::find(pool.ids.begin(), pool.ids.end(), id) - pool.ids.begin());
      return at < pool.ids.size() && pool.alive[at];
    });
    const bool counted = a_holder_lives && stored_thrice[k];
    survivable += counted ? 1 : 0;
    const json got = pool.daemons[nodes[k % nodes.size()]]->ctl_json({"get", keys[k]});
    const bool read = got.is_object() && got["value"] == "v" + keys[k];
    readable += read ? 1 : 0;
    if (counted) CHECK(read);
  }
  fmt::print("[chord figures] {} of {} keys put before the kills readable after them ({} had a holder left)\n",
             readable, keys.size(), survivable);
  CHECK(readable >= survivable);
}

TEST_CASE("a key survives the death of each of its holders in turn", "[integration][chord]") {
  std::mt19937 rng(7);
  Pool pool;
  REQUIRE(pool.start(8, rng));
  std::string why;
  REQUIRE(pool.wait_ordered(60s, why) >= 0);
  const json put = pool.daemons[3]->ctl_json({"put", "precious", "payload"});
  REQUIRE(put.is_object());
  REQUIRE(put["copies"] == 3);
  for (int round = 0; round < 3; ++round) {
    INFO("round " << round);
    // Kill whoever owns the key now.
    const json where = pool.daemons[pool.live().front()]->ctl_json({"lookup", "precious"});
    REQUIRE(where.is_object());
    const auto owner =
        std::find(pool.ids.begin(), pool.ids.end(), where["owner"]["node_id"].get<std::string>()) - pool.ids.begin();
    pool.kill(static_cast<std::size_t>(owner));
    // Readable at once, from a replica, before the ring has even healed.
    const auto reader = pool.live().back();
    bool read = eventually(
        [&] {
          const json got = pool.daemons[reader]->ctl_json({"get", "precious"});
          return got.is_object() && got["value"] == "payload";
        },
        20s);
    CHECK(read);
    REQUIRE(pool.wait_ordered(60s, why) >= 0);
    std::this_thread::sleep_for(5s);  // two sync rounds: the replicas are back to three
  }
}

TEST_CASE("p2pctl leave hands the keys over and the neighbours close the ring at once", "[integration][chord]") {
  std::mt19937 rng(11);
  Pool pool;
  REQUIRE(pool.start(6, rng));
  std::string why;
  REQUIRE(pool.wait_ordered(60s, why) >= 0);
  std::vector<std::string> keys;
  for (int k = 0; k < 30; ++k) {
    keys.push_back(fmt::format("leave-{}", k));
    REQUIRE(pool.daemons[0]->ctl_json({"put", keys.back(), "x"}).is_object());
  }
  const json left = pool.daemons[2]->ctl_json({"leave"});
  REQUIRE(left.is_object());
  CHECK(left.contains("keys_handed_over"));
  CHECK(pool.daemons[2]->process().wait_for(15s).value_or(ExitStatus{}).exited_with(0));
  pool.alive[2] = false;
  // Well under the three missed stabilize rounds failure detection needs.
  const double ordered = pool.wait_ordered(20s, why);
  INFO(why);
  CHECK(ordered >= 0);
  CHECK(ordered < 3.0 * p2pd::test::slowdown());
  for (const auto& key : keys) {
    const json got = pool.daemons[pool.live().front()]->ctl_json({"get", key});
    CHECK((got.is_object() && got["value"] == "x"));
  }
}
