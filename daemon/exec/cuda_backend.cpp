// The CUDA executor: cuBLAS sgemm on device 0 (DESIGN.md daemon/exec). One
// backend is one worker: it owns one cuBLAS handle, one stream, device
// buffers and pinned host staging buffers, all reused and grown as shards
// need, so a stream of shards allocates nothing in steady state.
//
// Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ, so cuBLAS is called with the
// operands swapped and no transposes (the usual trick; no copies).
//
// Plain FP32 (CUBLAS_DEFAULT_MATH, no TF32): the result must pass the same
// Freivalds check, with FP32 rounding bounds, as the CPU's.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>

#include "daemon/exec/backend.hpp"

namespace p2pd::exec {
namespace {

Error cuda_error(const char* what, cudaError_t rc) {
  cudaGetLastError();  // clear a non-sticky error so the next call can try again
  return make_error(ErrorCode::unavailable, "CUDA {}: {}", what, cudaGetErrorString(rc));
}

Error cublas_error(const char* what, cublasStatus_t rc) {
  return make_error(ErrorCode::unavailable, "cuBLAS {}: {}", what, cublasGetStatusString(rc));
}

// A buffer that grows (never shrinks) by reallocating.
template <bool Pinned>
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { release(); }

  Result<float*> reserve(std::size_t floats) {
    if (floats <= m_capacity) return m_data;
    release();
    void* p = nullptr;
    const cudaError_t rc = Pinned ? cudaMallocHost(&p, floats * sizeof(float)) : cudaMalloc(&p, floats * sizeof(float));
    if (rc != cudaSuccess) return cuda_error(Pinned ? "pinned allocation" : "device allocation", rc);
    m_data = static_cast<float*>(p);
    m_capacity = floats;
    return m_data;
  }

 private:
  void release() {
    if (m_data == nullptr) return;
    if constexpr (Pinned) {
      cudaFreeHost(m_data);
    } else {
      cudaFree(m_data);
    }
    m_data = nullptr;
    m_capacity = 0;
  }
  float* m_data = nullptr;
  std::size_t m_capacity = 0;
};

class CudaBackend final : public Backend {
 public:
  static std::unique_ptr<Backend> create() {
    std::unique_ptr<CudaBackend> backend(new CudaBackend());
    if (cudaSetDevice(0) != cudaSuccess) return nullptr;
    cudaDeviceProp props{};
    if (cudaGetDeviceProperties(&props, 0) != cudaSuccess) return nullptr;
    backend->m_device = props.name;
    if (cudaStreamCreateWithFlags(&backend->m_stream, cudaStreamNonBlocking) != cudaSuccess) return nullptr;
    if (cublasCreate(&backend->m_handle) != CUBLAS_STATUS_SUCCESS) return nullptr;
    if (cublasSetStream(backend->m_handle, backend->m_stream) != CUBLAS_STATUS_SUCCESS) return nullptr;
    if (cudaEventCreate(&backend->m_kernel_start) != cudaSuccess) return nullptr;
    if (cudaEventCreate(&backend->m_kernel_end) != cudaSuccess) return nullptr;
    return backend;
  }

  ~CudaBackend() override {
    if (m_kernel_start != nullptr) cudaEventDestroy(m_kernel_start);
    if (m_kernel_end != nullptr) cudaEventDestroy(m_kernel_end);
    if (m_handle != nullptr) cublasDestroy(m_handle);
    if (m_stream != nullptr) cudaStreamDestroy(m_stream);
  }

  [[nodiscard]] ExecutorKind kind() const override { return ExecutorKind::cuda; }
  [[nodiscard]] std::string describe() const override { return fmt::format("cuBLAS on {}", m_device); }

  Result<void> gemm(std::span<const float> a, std::span<const float> b, std::span<float> c,
                    const GemmShape& shape) override {
    if (auto ok = check_gemm_arguments(a, b, c, shape); !ok) return ok;
    if (cudaSetDevice(0) != cudaSuccess) return cuda_error("set device", cudaGetLastError());
    auto da = m_dev_a.reserve(a.size());
    auto db = m_dev_b.reserve(b.size());
    auto dc = m_dev_c.reserve(c.size());
    if (!da) return da.error();
    if (!db) return db.error();
    if (!dc) return dc.error();
    // Pageable spans are staged through pinned memory so the copies are
    // true DMA, asynchronous on our stream.
    auto staging = m_staging.reserve(std::max({a.size(), b.size(), c.size()}));
    if (!staging) return staging.error();
    for (auto [src, dst] : {std::pair{a, *da}, std::pair{b, *db}}) {
      std::memcpy(*staging, src.data(), src.size_bytes());
      if (auto rc = cudaMemcpyAsync(dst, *staging, src.size_bytes(), cudaMemcpyHostToDevice, m_stream);
          rc != cudaSuccess) {
        return cuda_error("copy to device", rc);
      }
      // The staging buffer is reused for the next operand: wait for this copy.
      if (auto rc = cudaStreamSynchronize(m_stream); rc != cudaSuccess) return cuda_error("copy to device", rc);
    }
    const float alpha = 1.0f;
    const float beta = 0.0f;
    const int m = static_cast<int>(shape.m);
    const int k = static_cast<int>(shape.k);
    const int n = static_cast<int>(shape.n);
    cudaEventRecord(m_kernel_start, m_stream);
    if (auto rc = cublasSgemm(m_handle, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &alpha, *db, n, *da, k, &beta, *dc, n);
        rc != CUBLAS_STATUS_SUCCESS) {
      return cublas_error("sgemm", rc);
    }
    cudaEventRecord(m_kernel_end, m_stream);
    if (auto rc = cudaMemcpyAsync(*staging, *dc, c.size_bytes(), cudaMemcpyDeviceToHost, m_stream); rc != cudaSuccess) {
      return cuda_error("copy from device", rc);
    }
    if (auto rc = cudaStreamSynchronize(m_stream); rc != cudaSuccess) return cuda_error("sgemm", rc);
    std::memcpy(c.data(), *staging, c.size_bytes());
    float ms = 0;
    m_last_kernel_seconds = cudaEventElapsedTime(&ms, m_kernel_start, m_kernel_end) == cudaSuccess ? ms / 1000.0 : 0;
    return {};
  }

  [[nodiscard]] double last_kernel_seconds() const override { return m_last_kernel_seconds; }

 private:
  CudaBackend() = default;
  std::string m_device;
  cudaStream_t m_stream = nullptr;
  cublasHandle_t m_handle = nullptr;
  Buffer<false> m_dev_a, m_dev_b, m_dev_c;
  Buffer<true> m_staging;
  cudaEvent_t m_kernel_start = nullptr;
  cudaEvent_t m_kernel_end = nullptr;
  double m_last_kernel_seconds = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend() {
  return CudaBackend::create();
}

}  // namespace p2pd::exec
