#include <cblas.h>

#include <climits>
#include <thread>

#include "daemon/exec/backend.hpp"

namespace p2pd::exec {

Result<void> check_gemm_arguments(std::span<const float> a, std::span<const float> b, std::span<const float> c,
                                  const GemmShape& shape) {
  if (shape.m == 0 || shape.k == 0 || shape.n == 0) {
    return make_error(ErrorCode::invalid_argument, "gemm of an empty matrix ({}x{} by {}x{})", shape.m, shape.k,
                      shape.k, shape.n);
  }
  // BLAS takes int dimensions; each product below then fits in 64 bits.
  if (shape.m > INT_MAX || shape.k > INT_MAX || shape.n > INT_MAX) {
    return make_error(ErrorCode::invalid_argument, "gemm dimension over {} ({}x{} by {}x{})", INT_MAX, shape.m, shape.k,
                      shape.k, shape.n);
  }
  if (a.size() != shape.m * shape.k || b.size() != shape.k * shape.n || c.size() != shape.m * shape.n) {
    return make_error(ErrorCode::invalid_argument,
                      "gemm buffers do not match {}x{} by {}x{}: A has {} floats, B {}, C {}", shape.m, shape.k,
                      shape.k, shape.n, a.size(), b.size(), c.size());
  }
  return {};
}

namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(unsigned threads) {
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    // OpenBLAS's pool is process-wide; a shard uses all of it.
    openblas_set_num_threads(static_cast<int>(threads));
    m_threads = static_cast<unsigned>(openblas_get_num_threads());
  }

  [[nodiscard]] ExecutorKind kind() const override { return ExecutorKind::cpu; }
  [[nodiscard]] std::string describe() const override {
    return fmt::format("{}, {} threads", openblas_get_config(), m_threads);
  }

  Result<void> gemm(std::span<const float> a, std::span<const float> b, std::span<float> c,
                    const GemmShape& shape) override {
    if (auto ok = check_gemm_arguments(a, b, c, shape); !ok) return ok;
    const auto m = static_cast<blasint>(shape.m);
    const auto k = static_cast<blasint>(shape.k);
    const auto n = static_cast<blasint>(shape.n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
    return {};
  }

 private:
  unsigned m_threads = 1;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(unsigned threads) {
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace p2pd::exec
