// The CUDA backend against the CPU backend (the reference), on odd shapes,
// repeated shapes (buffers reused) and growing ones (buffers regrown).
// Tagged [gpu]: without a CUDA device make_cuda_backend() gives nullptr and
// each case says it was skipped; on the GPU machine run
//   build/<preset>/tests/p2pd_unit_tests '[gpu]'
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "daemon/exec/backend.hpp"
#include "daemon/exec/verify.hpp"

using namespace p2pd;
using namespace p2pd::exec;

namespace {

std::vector<float> random_values(std::uint64_t count, std::mt19937& rng) {
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::vector<float> out(count);
  for (auto& x : out) x = value(rng);
  return out;
}

}  // namespace

TEST_CASE("cuda gemm matches the cpu backend on odd shapes", "[unit][exec][gpu]") {
  auto gpu = make_cuda_backend();
  if (!gpu) {
    WARN("no CUDA device: [gpu] case skipped");
    return;
  }
  CHECK(gpu->kind() == ExecutorKind::cuda);
  auto cpu = make_cpu_backend();
  std::mt19937 rng(11);
  for (const GemmShape& shape : {GemmShape{1, 1, 1}, GemmShape{7, 13, 5}, GemmShape{97, 89, 101}, GemmShape{1000, 1, 3},
                                 GemmShape{3, 2048, 1}, GemmShape{7, 13, 5}, GemmShape{512, 256, 384}}) {
    CAPTURE(shape.m, shape.k, shape.n);
    const auto a = random_values(shape.m * shape.k, rng);
    const auto b = random_values(shape.k * shape.n, rng);
    std::vector<float> c_gpu(shape.m * shape.n, -1.0f), c_cpu(shape.m * shape.n);
    REQUIRE(gpu->gemm(a, b, c_gpu, shape));
    REQUIRE(cpu->gemm(a, b, c_cpu, shape));
    // Both pass the same rigorous check, and agree within float rounding.
    auto verdict = verify_gemm(a, b, c_gpu, shape, 5);
    REQUIRE(verdict);
    CHECK(verdict->correct);
    double worst = 0;
    for (std::size_t i = 0; i < c_gpu.size(); ++i) {
      worst = std::max(worst, static_cast<double>(std::abs(c_gpu[i] - c_cpu[i])));
    }
    CHECK(worst <= 1e-4 * static_cast<double>(shape.k));
    CHECK(gpu->last_kernel_seconds() > 0);
  }
}

TEST_CASE("cuda gemm refuses mismatched buffers without touching C", "[unit][exec][gpu]") {
  auto gpu = make_cuda_backend();
  if (!gpu) {
    WARN("no CUDA device: [gpu] case skipped");
    return;
  }
  std::vector<float> a(6, 1.0f), b(12, 1.0f), c(8, 7.0f);
  CHECK_FALSE(gpu->gemm(a, b, std::span<float>(c).first(7), GemmShape{2, 3, 4}));
  CHECK_FALSE(gpu->gemm(a, b, c, GemmShape{0, 3, 4}));
  for (float v : c) CHECK(v == 7.0f);
  REQUIRE(gpu->gemm(a, b, c, GemmShape{2, 3, 4}));
  for (float v : c) CHECK(v == 3.0f);
}
