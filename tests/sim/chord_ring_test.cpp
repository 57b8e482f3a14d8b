// The unchanged Chord ring-maintenance core on hundreds of simulated nodes,
// checked against Zave's invariants ("How to make Chord correct", §3-§4).
#include <catch2/catch.hpp>

#include "tests/sim/chord_harness.hpp"
#include "tests/sim/seeds.hpp"

using namespace p2pd;
using namespace p2pd::sim;
using namespace std::chrono_literals;

namespace {

// Structural invariants that must hold after every single event (Zave §4):
// a member's successor list is non-empty, duplicate-free and ordered
// clockwise from itself; with `require_live`, it also has a live entry
// ("AtLeastOneLiveSuccessor", which Zave proves only while fewer than r
// consecutive nodes fail). Only the node that just stepped can have changed.
std::optional<std::string> structural_violation(ChordSim& sim, bool require_live) {
  if (const auto a = sim.last_stepped()) {
    const auto* ring = ring_of(sim, *a);
    if (ring == nullptr || !ring->is_member()) return std::nullopt;
    const auto& succ = ring->successors();
    if (succ.empty()) return fmt::format("node {} is a member with no successor", *a);
    const NodeId& self = ring->self().id;
    bool any_live = false;
    for (std::size_t k = 0; k < succ.size(); ++k) {
      if (k > 0 && !(self.distance_to(succ[k - 1].id) < self.distance_to(succ[k].id))) {
        return fmt::format("node {}: successor list not ordered clockwise at {}", *a, k);
      }
      const auto addr = static_cast<Address>(std::stoul(succ[k].addr));
      if (succ[k].id == self || sim.is_up(addr)) any_live = true;
    }
    if (require_live && !any_live) return fmt::format("node {}: no live entry in its successor list", *a);
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("nodes joining one after another form the ideal ring", "[sim][chord]") {
  for (auto seed : sweep_seeds(3)) {
    INFO("seed " << seed);
    auto sim = make_sim(seed);
    sim.add_invariant("structure", [&] { return structural_violation(sim, true); });
    for (int i = 0; i < 64; ++i) {
      sim.add_node();
      sim.run_for(300ms);
    }
    std::optional<std::string> why;
    const bool ideal = converges(sim, 300s, why);
    INFO((why ? *why : "") << (sim.failure() ? *sim.failure() : ""));
    CHECK(ideal);
  }
}

TEST_CASE("hundreds of concurrent joins under loss converge to the ideal ring", "[sim][chord]") {
  for (auto seed : sweep_seeds(3)) {
    INFO("seed " << seed);
    auto sim = make_sim(seed, LinkModel{1ms, 40ms, 0.02, 0.01});
    sim.add_invariant("structure", [&] { return structural_violation(sim, true); });
    for (int i = 0; i < 200; ++i) sim.add_node();
    std::optional<std::string> why;
    const bool ideal = converges(sim, 900s, why);
    INFO((why ? *why : "") << (sim.failure() ? *sim.failure() : ""));
    CHECK(ideal);
    INFO("virtual seconds to converge: " << sim.now().count() / 1e6);
  }
}

TEST_CASE("the ring heals after a quarter and then half of the nodes fail at once", "[sim][chord]") {
  // Chord (Stoica et al., ToN 2003, Theorem IV.5): with a successor list of
  // r = Omega(log N) in a stable ring, even if every node fails with
  // probability 1/2, each survivor still has a live successor w.h.p. We use
  // r = 2 log2 N = 16 for 256 nodes, so "at least one live successor" must
  // hold after every event, through both waves of failures.
  constexpr std::size_t kNodes = 256, kSuccessors = 16;
  for (auto seed : sweep_seeds(3)) {
    INFO("seed " << seed);
    auto sim = make_sim(seed, LinkModel{1ms, 20ms, 0.0, 0.0}, config_with(kSuccessors));
    for (std::size_t i = 0; i < kNodes; ++i) sim.add_node();
    std::optional<std::string> why;
    REQUIRE(converges(sim, 900s, why, kSuccessors));
    sim.add_invariant("structure", [&] { return structural_violation(sim, true); });
    for (double fraction : {0.25, 0.5}) {
      INFO("failing " << fraction);
      Rng pick(seed * 7919);
      std::vector<Address> alive;
      for (Address a = 1; a < sim.size(); ++a) {  // node 0, the bootstrap, stays up
        if (sim.is_up(a)) alive.push_back(a);
      }
      const auto kills = static_cast<std::size_t>(fraction * static_cast<double>(alive.size()));
      for (std::size_t k = 0; k < kills; ++k) {
        const auto at = pick.uniform(0, alive.size() - 1);
        sim.crash(alive[at]);
        alive.erase(alive.begin() + static_cast<std::ptrdiff_t>(at));
      }
      const bool ideal = converges(sim, 900s, why, kSuccessors);
      INFO((why ? *why : "") << (sim.failure() ? *sim.failure() : ""));
      CHECK(ideal);
    }
  }
}

TEST_CASE("a node that loses every successor stays a member and causes no cascade", "[sim][chord]") {
  // Beyond Zave's assumption: r = 2 and two consecutive successors of one
  // node die. No list reaches past the gap, so Chord cannot route around it
  // (which is why r must be Omega(log N)); what must hold is that the
  // stranded node stays a member answering for itself and that no other
  // node loses its list because of it (before the fix, predecessors dropped
  // the rejoining node, found only dead copies behind it, and rejoined in
  // turn, one after another).
  auto sim = make_sim(9, LinkModel{1ms, 20ms, 0.0, 0.0}, config_with(2));
  for (int i = 0; i < 24; ++i) sim.add_node();
  std::optional<std::string> why;
  REQUIRE(converges(sim, 300s, why, 2));
  sim.add_invariant("structure", [&] { return structural_violation(sim, false); });
  const auto members = live_members(sim);
  std::size_t victim = 0;  // a node whose two successors are not the bootstrap node 0
  while (members[victim].second == 0 || members[(victim + 1) % members.size()].second == 0 ||
         members[(victim + 2) % members.size()].second == 0) {
    ++victim;
  }
  const Address stranded = members[victim].second;
  sim.crash(members[(victim + 1) % members.size()].second);
  sim.crash(members[(victim + 2) % members.size()].second);
  sim.run_for(300s);
  REQUIRE_FALSE(sim.failure());
  CHECK(ring_of(sim, stranded)->rejoins() >= 1);
  CHECK(ring_of(sim, stranded)->is_member());
  for (Address a = 0; a < sim.size(); ++a) {
    if (a == stranded || !sim.is_up(a)) continue;
    INFO("node " << a);
    CHECK(ring_of(sim, a)->rejoins() == 0);
    CHECK(ring_of(sim, a)->is_member());
    CHECK(ring_of(sim, a)->successors().size() >= 1);
  }
}

TEST_CASE("a crashed node that restarts rejoins at its place", "[sim][chord]") {
  auto sim = make_sim(5);
  std::optional<std::string> why;
  for (int i = 0; i < 32; ++i) sim.add_node();
  REQUIRE(converges(sim, 300s, why));
  const NodeId id = *sim.durable(17).id;
  sim.crash(17);
  REQUIRE(converges(sim, 300s, why));
  CHECK(live_members(sim).size() == 31);
  sim.restart(17);
  REQUIRE(converges(sim, 300s, why));
  CHECK(live_members(sim).size() == 32);
  CHECK(ring_of(sim, 17)->self().id == id);  // same id: it comes back at the same place
}
