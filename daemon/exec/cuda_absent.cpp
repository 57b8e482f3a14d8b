#include "daemon/exec/executor_select.hpp"

namespace p2pd::exec {

Result<CudaDevice> probe_cuda() {
  return make_error(ErrorCode::unavailable, "this p2pd was built without CUDA (-DP2PD_CUDA=OFF or no toolkit)");
}

}  // namespace p2pd::exec

#include "daemon/exec/backend.hpp"

namespace p2pd::exec {

std::unique_ptr<Backend> make_cuda_backend() {
  return nullptr;
}

}  // namespace p2pd::exec
