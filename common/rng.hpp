#pragma once
// The only randomness protocol cores may use (STYLE.md): seeded, injected, and
// identical on every platform. std::uniform_*_distribution is implementation
// defined, so the draws are done here.

#include <cstdint>

namespace p2pd {

// xoshiro256** (Blackman & Vigna), seeded through SplitMix64.
class Rng {
 public:
  explicit Rng(std::uint64_t seed);

  std::uint64_t next();
  // Uniform in [lo, hi]; requires lo <= hi.
  std::uint64_t uniform(std::uint64_t lo, std::uint64_t hi);
  // Uniform in [0, 1).
  double unit();
  // True with probability p (p <= 0: never, p >= 1: always).
  bool chance(double p);
  // A new independent generator, e.g. one per simulated node.
  Rng fork();

 private:
  std::uint64_t m_state[4];
};

}  // namespace p2pd
