#include "daemon/exec/executor_select.hpp"

#include "common/log.hpp"

namespace p2pd::exec {

std::string_view to_string(ExecutorChoice choice) {
  switch (choice) {
    case ExecutorChoice::automatic: return "auto";
    case ExecutorChoice::cuda: return "cuda";
    case ExecutorChoice::cpu: return "cpu";
  }
  return "?";
}

std::string_view to_string(ExecutorKind kind) {
  return kind == ExecutorKind::cuda ? "cuda" : "cpu";
}

Result<ExecutorInfo> select_executor(ExecutorChoice choice) {
  if (choice == ExecutorChoice::cpu) return ExecutorInfo{ExecutorKind::cpu, ""};
  auto device = probe_cuda();
  if (device) {
    log::info(log::Category::exec, "executor: cuda on device {} ({}, {} MiB)", device->index, device->name,
              device->memory_bytes >> 20);
    return ExecutorInfo{ExecutorKind::cuda, device->name};
  }
  if (choice == ExecutorChoice::cuda) {
    return make_error(ErrorCode::unavailable, "--executor cuda: {}", device.error().message);
  }
  log::info(log::Category::exec, "executor: cpu (no usable GPU: {})", device.error().message);
  return ExecutorInfo{ExecutorKind::cpu, ""};
}

}  // namespace p2pd::exec
