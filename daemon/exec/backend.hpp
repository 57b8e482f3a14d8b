#pragma once
// Where a shard's arithmetic runs (DESIGN.md daemon/exec). One interface,
// one implementation per executor: cpu (OpenBLAS) always, cuda (cuBLAS)
// when built with CUDA and a device works. A backend says which operations
// it supports by implementing them; the CPU is the reference the GPU is
// tested against (Faiss/ggml's rule).

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/result.hpp"
#include "daemon/exec/executor_select.hpp"

namespace p2pd::exec {

// C (m x n) = A (m x k) · B (k x n), all float32, row-major (C order, as .npy stores them).
struct GemmShape {
  std::uint64_t m = 0;
  std::uint64_t k = 0;
  std::uint64_t n = 0;
  friend bool operator==(const GemmShape&, const GemmShape&) = default;
};

class Backend {
 public:
  virtual ~Backend() = default;
  [[nodiscard]] virtual ExecutorKind kind() const = 0;
  // For logs and `status`: e.g. "OpenBLAS 0.3.21, 16 threads".
  [[nodiscard]] virtual std::string describe() const = 0;
  // The spans must hold exactly m·k, k·n and m·n floats; anything else is
  // invalid_argument, and C is untouched.
  virtual Result<void> gemm(std::span<const float> a, std::span<const float> b, std::span<float> c,
                            const GemmShape& shape) = 0;
  // Seconds the last gemm() spent in the kernel alone (device time on a
  // GPU, without the copies); 0 when the backend does not measure it.
  [[nodiscard]] virtual double last_kernel_seconds() const { return 0; }
};

// The CPU backend; `threads` 0 sizes OpenBLAS's pool to the machine.
std::unique_ptr<Backend> make_cpu_backend(unsigned threads = 0);

// The CUDA backend (cuBLAS) on device 0, or nullptr when this build has no
// CUDA or no device works.
std::unique_ptr<Backend> make_cuda_backend();

// Checks spans against the shape and BLAS's int dimensions (shared by backends).
Result<void> check_gemm_arguments(std::span<const float> a, std::span<const float> b, std::span<const float> c,
                                  const GemmShape& shape);

}  // namespace p2pd::exec
