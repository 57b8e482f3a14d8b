// The CPU backend against a naive reference on awkward shapes: 1x1, primes,
// k = 1, tall and skinny. The CPU is the reference the GPU is tested
// against, so it is checked here against plain loops (double accumulation).
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "daemon/exec/backend.hpp"

using namespace p2pd;
using namespace p2pd::exec;

namespace {

std::vector<float> random_matrix(std::uint64_t rows, std::uint64_t cols, std::mt19937& rng) {
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::vector<float> out(rows * cols);
  for (auto& x : out) x = value(rng);
  return out;
}

std::vector<double> naive_gemm(const std::vector<float>& a, const std::vector<float>& b, const GemmShape& s) {
  std::vector<double> c(s.m * s.n, 0.0);
  for (std::uint64_t i = 0; i < s.m; ++i) {
    for (std::uint64_t p = 0; p < s.k; ++p) {
      const double aip = a[i * s.k + p];
      for (std::uint64_t j = 0; j < s.n; ++j) c[i * s.n + j] += aip * b[p * s.n + j];
    }
  }
  return c;
}

}  // namespace

TEST_CASE("cpu gemm matches a naive reference on odd shapes", "[unit][exec]") {
  auto cpu = make_cpu_backend();
  REQUIRE(cpu->kind() == ExecutorKind::cpu);
  CHECK_THAT(cpu->describe(), Catch::Contains("threads"));
  std::mt19937 rng(42);
  for (const GemmShape shape :
       {GemmShape{1, 1, 1}, GemmShape{7, 13, 5}, GemmShape{17, 1, 3}, GemmShape{1, 257, 1}, GemmShape{97, 89, 83},
        GemmShape{300, 2, 1}, GemmShape{2, 3, 311}, GemmShape{128, 128, 128}}) {
    INFO(shape.m << "x" << shape.k << " by " << shape.k << "x" << shape.n);
    const auto a = random_matrix(shape.m, shape.k, rng);
    const auto b = random_matrix(shape.k, shape.n, rng);
    std::vector<float> c(shape.m * shape.n, std::nanf(""));
    REQUIRE(cpu->gemm(a, b, c, shape));
    const auto want = naive_gemm(a, b, shape);
    // float32 sums of k terms in [-1, 1]: error grows about like sqrt(k).
    const double tolerance = 1e-5 * (1.0 + std::sqrt(static_cast<double>(shape.k)));
    double worst = 0;
    for (std::size_t i = 0; i < c.size(); ++i) worst = std::max(worst, std::abs(c[i] - want[i]));
    CHECK(worst <= tolerance);
  }
}

TEST_CASE("cpu gemm refuses buffers that do not match the shape", "[unit][exec]") {
  auto cpu = make_cpu_backend(1);
  std::vector<float> a(6, 1.0f), b(12, 1.0f), c(8, 0.0f);
  CHECK(cpu->gemm(a, b, c, GemmShape{2, 3, 4}));
  CHECK(c[0] == 3.0f);
  std::vector<float> short_c(7, -1.0f);
  auto refused = cpu->gemm(a, b, short_c, GemmShape{2, 3, 4});
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error().message, Catch::Contains("do not match"));
  CHECK(short_c[0] == -1.0f);  // untouched
  CHECK_FALSE(cpu->gemm(a, b, c, GemmShape{0, 3, 4}));
  CHECK_FALSE(cpu->gemm(a, b, c, GemmShape{1ull << 31, 3, 4}));
}
