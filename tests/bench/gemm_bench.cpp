// GEMM baselines for scripts/bench-jobs.sh (issue 5's benchmark): what the
// pool's numbers are measured against, in the same run.
//
//   p2pd_gemm_bench inputs DIR N   write DIR/a.npy and DIR/b.npy, N x N float32
//   p2pd_gemm_bench cpu N [REPS]   bare OpenBLAS cblas_sgemm, N³: median seconds
//   p2pd_gemm_bench verify N [REPS]  Freivalds' check of an N³ product: median seconds
//   p2pd_gemm_bench cuda N [REPS]  cublasSgemm standalone (device buffers, its
//                                  own handle) against p2pd's CUDA backend's
//                                  kernel: median seconds of each and the ratio
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "common/npy.hpp"
#include "daemon/exec/backend.hpp"
#include "daemon/exec/verify.hpp"

#ifdef P2PD_BENCH_CUDA
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#endif

using namespace p2pd;

namespace {

std::vector<float> random_values(std::size_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> out(count);
  for (auto& v : out) v = dist(rng);
  return out;
}

double median(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

int usage() {
  std::fputs("usage: p2pd_gemm_bench inputs DIR N | cpu N [REPS] | verify N [REPS] | cuda N [REPS]\n", stderr);
  return 2;
}

int write_inputs(const std::string& dir, std::uint64_t n) {
  for (auto [name, seed] : {std::pair{"a.npy", 1u}, std::pair{"b.npy", 2u}}) {
    auto values = random_values(n * n, seed);
    if (auto written = npy::write_matrix(dir + "/" + name, n, n, values); !written) {
      fmt::print(stderr, "{}\n", written.error().message);
      return 1;
    }
  }
  return 0;
}

int bench_cpu(int n, int reps) {
  auto a = random_values(static_cast<std::size_t>(n) * n, 1);
  auto b = random_values(static_cast<std::size_t>(n) * n, 2);
  std::vector<float> c(static_cast<std::size_t>(n) * n);
  std::vector<double> seconds;
  for (int r = 0; r <= reps; ++r) {  // the first is a warm-up
    const auto start = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    if (r > 0) seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  fmt::print("{:.4f}\n", median(seconds));
  return 0;
}

// How long the leader's check of one N³ result takes (Freivalds, 4 rounds).
int bench_verify(int n, int reps) {
  auto a = random_values(static_cast<std::size_t>(n) * n, 1);
  auto b = random_values(static_cast<std::size_t>(n) * n, 2);
  std::vector<float> c(static_cast<std::size_t>(n) * n);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  const exec::GemmShape shape{static_cast<std::uint64_t>(n), static_cast<std::uint64_t>(n),
                              static_cast<std::uint64_t>(n)};
  std::vector<double> seconds;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    auto verdict = exec::verify_gemm(a, b, c, shape, static_cast<std::uint64_t>(r), 4,
                                     std::max(1u, std::thread::hardware_concurrency()));
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (!verdict || !verdict->correct) {
      std::fputs("verification failed on a correct product\n", stderr);
      return 1;
    }
  }
  fmt::print("{:.4f}\n", median(seconds));
  return 0;
}

#ifdef P2PD_BENCH_CUDA
int bench_cuda(int n, int reps) {
  const std::size_t count = static_cast<std::size_t>(n) * n;
  auto a = random_values(count, 1);
  auto b = random_values(count, 2);
  std::vector<float> c(count);
  void *va = nullptr, *vb = nullptr, *vc = nullptr;
  if (cudaMalloc(&va, count * 4) != cudaSuccess || cudaMalloc(&vb, count * 4) != cudaSuccess ||
      cudaMalloc(&vc, count * 4) != cudaSuccess) {
    std::fputs("no CUDA device\n", stderr);
    return 3;
  }
  auto* da = static_cast<float*>(va);
  auto* db = static_cast<float*>(vb);
  auto* dc = static_cast<float*>(vc);
  cudaMemcpy(da, a.data(), count * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(db, b.data(), count * 4, cudaMemcpyHostToDevice);
  cublasHandle_t handle = nullptr;
  cublasCreate(&handle);
  cudaEvent_t start = nullptr, stop = nullptr;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  const float alpha = 1.0f, beta = 0.0f;
  std::vector<double> standalone;
  for (int r = 0; r <= reps; ++r) {
    cudaEventRecord(start);
    cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, db, n, da, n, &beta, dc, n);
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    if (r > 0) standalone.push_back(ms / 1000.0);
  }
  cublasDestroy(handle);
  cudaFree(da);
  cudaFree(db);
  cudaFree(dc);

  auto backend = exec::make_cuda_backend();
  if (!backend) {
    std::fputs("p2pd's CUDA backend did not start\n", stderr);
    return 3;
  }
  std::vector<double> kernel, whole;
  const exec::GemmShape shape{static_cast<std::uint64_t>(n), static_cast<std::uint64_t>(n),
                              static_cast<std::uint64_t>(n)};
  for (int r = 0; r <= reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    if (auto ran = backend->gemm(a, b, c, shape); !ran) {
      fmt::print(stderr, "{}\n", ran.error().message);
      return 1;
    }
    if (r > 0) {
      kernel.push_back(backend->last_kernel_seconds());
      whole.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  const double flops = 2.0 * n * static_cast<double>(n) * n;
  const double s = median(standalone), k = median(kernel), w = median(whole);
  fmt::print("cublasSgemm standalone: {:.3f} ms ({:.1f} TFLOP/s)\n", s * 1e3, flops / s / 1e12);
  fmt::print("p2pd shard kernel:      {:.3f} ms ({:.1f} TFLOP/s)\n", k * 1e3, flops / k / 1e12);
  fmt::print("p2pd shard with copies: {:.3f} ms ({:.1f} TFLOP/s)\n", w * 1e3, flops / w / 1e12);
  fmt::print("kernel throughput ratio (p2pd / standalone): {:.3f}\n", s / k);
  return 0;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string mode = argv[1];
  if (mode == "inputs") {
    if (argc != 4) return usage();
    return write_inputs(argv[2], std::strtoull(argv[3], nullptr, 10));
  }
  const int n = std::atoi(argv[2]);
  const int reps = argc > 3 ? std::atoi(argv[3]) : 5;
  if (n <= 0 || reps <= 0) return usage();
  if (mode == "cpu") return bench_cpu(n, reps);
  if (mode == "verify") return bench_verify(n, reps);
#ifdef P2PD_BENCH_CUDA
  if (mode == "cuda") return bench_cuda(n, reps);
#else
  if (mode == "cuda") {
    std::fputs("this build has no CUDA\n", stderr);
    return 3;
  }
#endif
  return usage();
}
