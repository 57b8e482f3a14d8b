#pragma once
// What the Chord simulation tests and the path-length benchmark share: a
// simulator of ChordNodes, the live members in id order, Zave's ideal-ring
// check, and a way to run one overlay operation to its end.

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "tests/sim/chord_node.hpp"

namespace p2pd::sim {

using namespace std::chrono_literals;

using ChordSim = Simulator<ChordEnvelope, ChordDurable>;

inline chord::OverlayConfig config_with(std::size_t successors) {
  chord::OverlayConfig config;
  config.ring.successor_list_length = successors;
  return config;
}

inline ChordSim make_sim(std::uint64_t seed, LinkModel link = LinkModel{1ms, 20ms, 0.0, 0.0},
                         chord::OverlayConfig config = chord::OverlayConfig{}) {
  return ChordSim(SimConfig{seed, 50ms, link}, [config](Address self, ChordDurable& durable, Rng& rng) {
    // Node 0 starts the ring; everyone else joins through it.
    return std::make_unique<ChordNode>(self, durable, rng, self == 0 ? std::nullopt : std::optional<Address>(0),
                                       config);
  });
}

inline const chord::Ring* ring_of(ChordSim& sim, Address a) {
  auto* node = sim.process_as<ChordNode>(a);
  return node == nullptr ? nullptr : &node->ring();
}

// Live members sorted by id.
inline std::vector<std::pair<NodeId, Address>> live_members(ChordSim& sim) {
  std::vector<std::pair<NodeId, Address>> out;
  for (Address a = 0; a < sim.size(); ++a) {
    if (const auto* r = ring_of(sim, a); r != nullptr && r->is_member()) out.emplace_back(r->self().id, a);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Zave's ideal ring: every live node is a member; successor, predecessor and
// the whole successor list are exactly the next/previous live ids.
inline std::optional<std::string> ideal_ring_violation(ChordSim& sim,
                                                       std::size_t r = chord::RingConfig{}.successor_list_length) {
  std::size_t up = 0;
  for (Address a = 0; a < sim.size(); ++a) up += sim.is_up(a) ? 1 : 0;
  const auto members = live_members(sim);
  if (members.size() != up) return fmt::format("{} of {} live nodes are members", members.size(), up);
  const std::size_t n = members.size();
  for (std::size_t i = 0; i < n; ++i) {
    const auto* ring = ring_of(sim, members[i].second);
    const auto& succ = ring->successors();
    const std::size_t expected_len = n == 1 ? 1 : std::min(r, n - 1);
    if (succ.size() != expected_len)
      return fmt::format("node {} has {} successors, not {}", i, succ.size(), expected_len);
    for (std::size_t k = 0; k < succ.size(); ++k) {
      const auto& want = members[(i + 1 + k) % n].first;
      if (succ[k].id != want) return fmt::format("node {} successor {} is wrong", i, k);
    }
    const auto& want_pred = members[(i + n - 1) % n].first;
    if (n > 1 && (!ring->predecessor() || ring->predecessor()->id != want_pred)) {
      return fmt::format("node {} predecessor is wrong", i);
    }
  }
  return std::nullopt;
}

// Polls the (O(N·r)) ideal-ring check once per virtual second rather than
// after every event. `why` keeps the last violation for the failure message.
inline bool converges(ChordSim& sim, Duration limit, std::optional<std::string>& why,
                      std::size_t r = chord::RingConfig{}.successor_list_length) {
  for (Duration waited{0}; waited <= limit; waited += 1s) {
    if (!(why = ideal_ring_violation(sim, r))) return true;
    if (sim.failure()) return false;
    sim.run_for(1s);
  }
  return false;
}

// The node that owns `key` among the live members: its successor.
inline NodeId true_owner(const std::vector<std::pair<NodeId, Address>>& members, const NodeId& key) {
  auto it = std::lower_bound(members.begin(), members.end(), std::pair{key, Address{0}});
  return it == members.end() ? members.front().first : it->first;
}

// Starts one operation on node `at` per entry of `starts` at once, and runs
// the simulation until each has a result (or `limit` passes).
template <class Start>
std::vector<chord::OperationResult> run_operations(ChordSim& sim, const std::vector<Address>& at, Start start,
                                                   Duration limit = 120s) {
  std::vector<std::pair<Address, std::uint64_t>> started;
  for (std::size_t i = 0; i < at.size(); ++i) {
    started.emplace_back(at[i], start(sim.process_as<ChordNode>(at[i])->overlay(), i));
  }
  std::vector<std::optional<chord::OperationResult>> results(at.size());
  std::size_t done = 0;
  for (Duration waited{0}; done < at.size() && waited <= limit; waited += 50ms) {
    for (Address a : at) {
      auto* node = sim.process_as<ChordNode>(a);
      if (node == nullptr) continue;
      for (auto& r : node->overlay().take_results()) {
        for (std::size_t i = 0; i < started.size(); ++i) {
          if (started[i].first == a && started[i].second == r.operation_id && !results[i]) {
            results[i] = std::move(r);
            ++done;
            break;
          }
        }
      }
    }
    if (done < at.size()) sim.run_for(50ms);
  }
  std::vector<chord::OperationResult> out;
  for (auto& r : results) {
    if (r) {
      out.push_back(std::move(*r));
    } else {
      chord::OperationResult missing;
      missing.error = "no result within the limit";
      out.push_back(std::move(missing));
    }
  }
  return out;
}

}  // namespace p2pd::sim
