#include "daemon/exec/verify.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include "common/rng.hpp"

namespace p2pd::exec {

Result<GemmVerdict> verify_gemm(std::span<const float> a, std::span<const float> b, std::span<const float> c,
                                const GemmShape& shape, std::uint64_t seed, int rounds) {
  if (auto ok = check_gemm_arguments(a, b, c, shape); !ok) return ok.error();
  if (rounds < 1) return make_error(ErrorCode::invalid_argument, "verification needs at least one round");
  const std::uint64_t m = shape.m, k = shape.k, n = shape.n;
  // Unit roundoff of float32, and γ_k with room for blocked and FMA
  // summation orders (their bounds are no worse than recursive summation's).
  const double u = std::numeric_limits<float>::epsilon() / 2;
  const double ku = static_cast<double>(k) * u;
  const double gamma = ku < 0.5 ? 2 * ku / (1 - ku) : 1.0;
  // A product whose exact value is 0 still rounds its terms: a floor that
  // keeps all-zero rows from demanding exactness beyond float's range.
  const double floor = std::numeric_limits<float>::min();

  Rng rng(seed);
  GemmVerdict verdict{true, 0, 0};
  std::vector<double> r(n), abs_r(n), br(k), abs_br(k);
  for (int round = 0; round < rounds; ++round) {
    for (std::uint64_t j = 0; j < n; ++j) {
      const double magnitude = 1.0 + static_cast<double>(rng.uniform(0, 1u << 20)) / static_cast<double>(1u << 21);
      r[j] = rng.chance(0.5) ? magnitude : -magnitude;
      abs_r[j] = magnitude;
    }
    for (std::uint64_t p = 0; p < k; ++p) {
      double sum = 0, abs_sum = 0;
      for (std::uint64_t j = 0; j < n; ++j) {
        const double v = b[p * n + j];
        sum += v * r[j];
        abs_sum += std::abs(v) * abs_r[j];
      }
      br[p] = sum;
      abs_br[p] = abs_sum;
    }
    for (std::uint64_t i = 0; i < m; ++i) {
      double want = 0, allowance = 0, got = 0;
      for (std::uint64_t p = 0; p < k; ++p) {
        const double v = a[i * k + p];
        want += v * br[p];
        allowance += std::abs(v) * abs_br[p];
      }
      for (std::uint64_t j = 0; j < n; ++j) got += static_cast<double>(c[i * n + j]) * r[j];
      // C's own entries were rounded to float on the way out: one more u each.
      allowance = allowance * (gamma + u) + floor;
      const double error = std::abs(got - want);
      const double ratio = std::isfinite(got) ? error / allowance : std::numeric_limits<double>::infinity();
      if (!(ratio <= verdict.worst_ratio)) {
        verdict.worst_ratio = ratio;
        verdict.worst_row = i;
      }
    }
  }
  verdict.correct = verdict.worst_ratio <= 1.0;
  return verdict;
}

}  // namespace p2pd::exec
