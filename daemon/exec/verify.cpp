#include "daemon/exec/verify.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <thread>
#include <type_traits>
#include <vector>

#include "common/rng.hpp"

namespace p2pd::exec {
namespace {

// Runs fn(begin, end, part) over [0, count) cut into `threads` parts, one
// thread each (the calling thread takes the first). Each part writes only
// its own outputs, so the result does not depend on the thread count.
template <class Fn>
void parallel_for(std::uint64_t count, unsigned threads, Fn fn) {
  threads = std::max(1u, threads);
  const std::uint64_t step = (count + threads - 1) / threads;
  auto run = [&](unsigned part) {
    const std::uint64_t begin = std::min(count, part * step);
    const std::uint64_t end = std::min(count, begin + step);
    if constexpr (std::is_invocable_v<Fn, std::uint64_t, std::uint64_t, unsigned>) {
      fn(begin, end, part);
    } else {
      fn(begin, end);
    }
  };
  std::vector<std::jthread> helpers;
  for (unsigned part = 1; part < threads; ++part) helpers.emplace_back(run, part);
  run(0);
}

}  // namespace

Result<GemmVerdict> verify_gemm(std::span<const float> a, std::span<const float> b, std::span<const float> c,
                                const GemmShape& shape, std::uint64_t seed, int rounds, unsigned threads) {
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
  // Up to kLanes rounds share one pass over A, B and C: each matrix is read
  // once per kLanes rounds, and the lanes are independent sums the compiler
  // can run side by side (no reassociation, so no fast-math needed).
  constexpr int kLanes = 4;
  using Lanes = std::array<double, kLanes>;
  std::vector<Lanes> r(n), abs_r(n), br(k), abs_br(k);
  for (int first = 0; first < rounds; first += kLanes) {
    const int lanes = std::min(kLanes, rounds - first);
    for (std::uint64_t j = 0; j < n; ++j) {
      for (int q = 0; q < kLanes; ++q) {
        if (q >= lanes) {
          r[j][q] = abs_r[j][q] = 0;
          continue;
        }
        const double magnitude = 1.0 + static_cast<double>(rng.uniform(0, 1u << 20)) / static_cast<double>(1u << 21);
        r[j][q] = rng.chance(0.5) ? magnitude : -magnitude;
        abs_r[j][q] = magnitude;
      }
    }
    parallel_for(k, threads, [&](std::uint64_t begin, std::uint64_t end) {
      for (std::uint64_t p = begin; p < end; ++p) {
        Lanes sum{}, abs_sum{};
        const float* row = b.data() + p * n;
        for (std::uint64_t j = 0; j < n; ++j) {
          const double v = row[j];
          const double av = std::abs(v);
          for (int q = 0; q < kLanes; ++q) {
            sum[q] += v * r[j][q];
            abs_sum[q] += av * abs_r[j][q];
          }
        }
        br[p] = sum;
        abs_br[p] = abs_sum;
      }
    });
    std::vector<GemmVerdict> partial(std::max(1u, threads), GemmVerdict{true, 0, 0});
    parallel_for(m, threads, [&](std::uint64_t begin, std::uint64_t end, unsigned part) {
      GemmVerdict& mine = partial[part];
      for (std::uint64_t i = begin; i < end; ++i) {
        Lanes want{}, allowance{}, got{};
        const float* a_row = a.data() + i * k;
        for (std::uint64_t p = 0; p < k; ++p) {
          const double v = a_row[p];
          const double av = std::abs(v);
          for (int q = 0; q < kLanes; ++q) {
            want[q] += v * br[p][q];
            allowance[q] += av * abs_br[p][q];
          }
        }
        const float* c_row = c.data() + i * n;
        for (std::uint64_t j = 0; j < n; ++j) {
          const double v = c_row[j];
          for (int q = 0; q < kLanes; ++q) got[q] += v * r[j][q];
        }
        for (int q = 0; q < lanes; ++q) {
          if (!std::isfinite(want[q]) || !(allowance[q] <= std::numeric_limits<float>::max())) {
            // The inputs hold NaN/Inf, or this row's products may not fit
            // in float32 (its magnitude bound is past FLT_MAX, so an honest
            // worker could return Inf): no result can be judged against
            // them, and no worker is to blame.
            mine.inputs_not_finite = true;
            continue;
          }
          // C's own entries were rounded to float on the way out: one more u each.
          const double allowed = allowance[q] * (gamma + u) + floor;
          const double error = std::abs(got[q] - want[q]);
          const double ratio = std::isfinite(got[q]) ? error / allowed : std::numeric_limits<double>::infinity();
          if (!(ratio <= mine.worst_ratio)) {
            mine.worst_ratio = ratio;
            mine.worst_row = i;
          }
        }
      }
    });
    for (const auto& p : partial) {
      if (p.inputs_not_finite) {
        return make_error(ErrorCode::invalid_argument,
                          "the job's inputs hold NaN or infinity, or their products overflow float32");
      }
      if (!(p.worst_ratio <= verdict.worst_ratio)) {
        verdict.worst_ratio = p.worst_ratio;
        verdict.worst_row = p.worst_row;
      }
    }
  }
  verdict.correct = verdict.worst_ratio <= 1.0;
  return verdict;
}

}  // namespace p2pd::exec
