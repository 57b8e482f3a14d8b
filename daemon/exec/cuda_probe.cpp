#include "daemon/exec/executor_select.hpp"

#include <cuda_runtime_api.h>

namespace p2pd::exec {

Result<CudaDevice> probe_cuda() {
  int count = 0;
  if (cudaError_t rc = cudaGetDeviceCount(&count); rc != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error state for later calls
    return make_error(ErrorCode::unavailable, "no CUDA device ({})", cudaGetErrorString(rc));
  }
  if (count == 0) return make_error(ErrorCode::unavailable, "no CUDA device");
  cudaDeviceProp props{};
  if (cudaError_t rc = cudaGetDeviceProperties(&props, 0); rc != cudaSuccess) {
    return make_error(ErrorCode::unavailable, "CUDA device 0: {}", cudaGetErrorString(rc));
  }
  // A device can be listed yet unusable (exclusive mode, a driver fault):
  // creating the context is the real test.
  if (cudaError_t rc = cudaSetDevice(0); rc != cudaSuccess) {
    return make_error(ErrorCode::unavailable, "CUDA device 0: {}", cudaGetErrorString(rc));
  }
  if (cudaError_t rc = cudaFree(nullptr); rc != cudaSuccess) {
    return make_error(ErrorCode::unavailable, "CUDA device 0 has no working context: {}", cudaGetErrorString(rc));
  }
  return CudaDevice{0, props.name, props.totalGlobalMem};
}

}  // namespace p2pd::exec
