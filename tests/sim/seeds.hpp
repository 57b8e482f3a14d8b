#pragma once
// Seed sweeps for simulation tests. P2PD_SIM_SEED=N replays one seed (the
// one a failure printed); P2PD_SIM_SEEDS=K widens the sweep.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace p2pd::sim {

inline std::vector<std::uint64_t> sweep_seeds(std::uint64_t default_count) {
  if (const char* one = std::getenv("P2PD_SIM_SEED"); one != nullptr && one[0] != '\0') {
    return {std::stoull(one)};
  }
  std::uint64_t count = default_count;
  if (const char* many = std::getenv("P2PD_SIM_SEEDS"); many != nullptr && many[0] != '\0') count = std::stoull(many);
  std::vector<std::uint64_t> seeds;
  for (std::uint64_t s = 1; s <= count; ++s) seeds.push_back(s);
  return seeds;
}

}  // namespace p2pd::sim
