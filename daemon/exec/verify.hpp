#pragma once
// Checking a shard's result without recomputing it (issue 5: every result
// is verified before it counts). Freivalds (1977): for a random vector r,
// C·r must equal A·(B·r); that costs O(mk + kn + mn) instead of O(mkn).
// Floats are not exact, so each row is allowed the rounding error a float32
// product can have (Higham, "Accuracy and Stability of Numerical
// Algorithms", §3.5: |fl(AB) - AB| <= γ_k |A||B|, γ_k = k·u / (1 - k·u)),
// computed for the same r; anything beyond that is a wrong result. The
// bound is the worst case, so an honest worker is never blamed; a deviation
// smaller than it cannot be told from rounding and is not caught.

#include <cstdint>
#include <span>

#include "common/result.hpp"
#include "daemon/exec/backend.hpp"

namespace p2pd::exec {

struct GemmVerdict {
  bool correct = false;
  // The largest |C·r - A·(B·r)| over its allowance, across rows and rounds
  // (<= 1 when correct); infinite for a non-finite C.
  double worst_ratio = 0;
  std::uint64_t worst_row = 0;
  bool inputs_not_finite = false;  // internal: such inputs are an error, not a verdict
};

// `rounds` independent vectors r, drawn from `seed`: |r_j| in [1, 2) with a
// random sign, so a single wrong entry always shows and several cancel with
// probability zero in exact arithmetic.
Result<GemmVerdict> verify_gemm(std::span<const float> a, std::span<const float> b, std::span<const float> c,
                                const GemmShape& shape, std::uint64_t seed, int rounds = 4, unsigned threads = 1);

}  // namespace p2pd::exec
