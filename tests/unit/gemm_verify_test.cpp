// Freivalds' check of a GEMM result (daemon/exec/verify): a correct float32
// product passes on every shape, however it was summed; a wrong one fails,
// down to a single entry off by more than rounding could explain. (Entries
// here are about 5 in size; the rounding allowance of a row is about 0.1.)
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "daemon/exec/backend.hpp"
#include "daemon/exec/verify.hpp"

using namespace p2pd;
using namespace p2pd::exec;

namespace {

struct Case {
  GemmShape shape;
  std::vector<float> a, b, c;
};

Case computed(const GemmShape& shape, std::mt19937& rng, float scale = 1.0f) {
  std::uniform_real_distribution<float> value(-scale, scale);
  Case out{shape, std::vector<float>(shape.m * shape.k), std::vector<float>(shape.k * shape.n),
           std::vector<float>(shape.m * shape.n)};
  for (auto& x : out.a) x = value(rng);
  for (auto& x : out.b) x = value(rng);
  REQUIRE(make_cpu_backend()->gemm(out.a, out.b, out.c, shape));
  return out;
}

GemmVerdict verdict_of(const Case& c, std::uint64_t seed = 7) {
  auto v = verify_gemm(c.a, c.b, c.c, c.shape, seed);
  REQUIRE(v);
  return *v;
}

}  // namespace

TEST_CASE("freivalds accepts correct products of every shape and scale", "[unit][exec]") {
  std::mt19937 rng(1);
  for (const GemmShape shape : {GemmShape{1, 1, 1}, GemmShape{7, 13, 5}, GemmShape{97, 89, 83}, GemmShape{300, 2, 1},
                                GemmShape{64, 1024, 64}, GemmShape{5, 4096, 3}}) {
    for (float scale : {1e-3f, 1.0f, 1e3f}) {
      INFO(shape.m << "x" << shape.k << "x" << shape.n << " scale " << scale);
      const auto c = computed(shape, rng, scale);
      const auto v = verdict_of(c);
      CHECK(v.correct);
      CHECK(v.worst_ratio < 1.0);
    }
  }
  // Summed another way (naive order, float accumulation) it still passes.
  const GemmShape shape{33, 777, 21};
  auto c = computed(shape, rng);
  for (std::uint64_t i = 0; i < shape.m; ++i) {
    for (std::uint64_t j = 0; j < shape.n; ++j) {
      float sum = 0;
      for (std::uint64_t p = 0; p < shape.k; ++p) sum += c.a[i * shape.k + p] * c.b[p * shape.n + j];
      c.c[i * shape.n + j] = sum;
    }
  }
  CHECK(verdict_of(c).correct);
}

TEST_CASE("freivalds catches wrong results", "[unit][exec]") {
  std::mt19937 rng(2);
  const GemmShape shape{64, 256, 48};
  const auto good = computed(shape, rng);
  SECTION("one entry off") {
    auto bad = good;
    bad.c[17 * shape.n + 5] += 0.5f;
    const auto v = verdict_of(bad);
    CHECK_FALSE(v.correct);
    CHECK(v.worst_row == 17);
  }
  SECTION("a row of zeros (a shard not computed)") {
    auto bad = good;
    std::fill(bad.c.begin() + 3 * static_cast<long>(shape.n), bad.c.begin() + 4 * static_cast<long>(shape.n), 0.0f);
    CHECK_FALSE(verdict_of(bad).correct);
  }
  SECTION("all of it scaled slightly") {
    auto bad = good;
    for (auto& x : bad.c) x *= 1.02f;
    CHECK_FALSE(verdict_of(bad).correct);
  }
  SECTION("rows swapped") {
    auto bad = good;
    std::swap_ranges(bad.c.begin(), bad.c.begin() + static_cast<long>(shape.n),
                     bad.c.begin() + static_cast<long>(shape.n));
    CHECK_FALSE(verdict_of(bad).correct);
  }
  SECTION("a NaN") {
    auto bad = good;
    bad.c[0] = std::numeric_limits<float>::quiet_NaN();
    const auto v = verdict_of(bad);
    CHECK_FALSE(v.correct);
    CHECK(std::isinf(v.worst_ratio));
  }
  SECTION("errors that cancel for one vector do not cancel for all") {
    auto bad = good;
    bad.c[2 * shape.n + 0] += 1.0f;
    bad.c[2 * shape.n + 1] -= 1.0f;
    for (std::uint64_t seed = 0; seed < 20; ++seed) CHECK_FALSE(verdict_of(bad, seed).correct);
  }
}

TEST_CASE("freivalds refuses mismatched buffers and zero rounds", "[unit][exec]") {
  std::vector<float> a(6), b(12), c(8);
  CHECK_FALSE(verify_gemm(a, b, std::span<const float>(c).first(7), GemmShape{2, 3, 4}, 1));
  CHECK_FALSE(verify_gemm(a, b, c, GemmShape{2, 3, 4}, 1, 0));
  CHECK(verify_gemm(a, b, c, GemmShape{2, 3, 4}, 1));
}

TEST_CASE("inputs that overflow float32 cannot be judged: an error, not a wrong result", "[unit][exec]") {
  // Whatever a worker returns for these, no worker is to blame.
  const std::vector<float> a{3e38f, 3e38f}, b{3e38f, 1.0f}, c{std::numeric_limits<float>::infinity()};
  auto verdict = verify_gemm(a, b, c, GemmShape{1, 2, 1}, 1);
  REQUIRE_FALSE(verdict);
  CHECK_THAT(verdict.error().message, Catch::Contains("overflow"));
  const std::vector<float> nan_a{std::numeric_limits<float>::quiet_NaN(), 1.0f}, ok_b{1.0f, 1.0f}, any_c{2.0f};
  REQUIRE_FALSE(verify_gemm(nan_a, ok_b, any_c, GemmShape{1, 2, 1}, 1));
}
