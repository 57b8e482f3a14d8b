#pragma once
// Which executor shards run on (CONTRACT.md --executor). CPU is always there;
// CUDA when the build has it and a device answers (Faiss/ggml's rule: the GPU
// backend is optional at build time and probed at run time).

#include <string>
#include <string_view>

#include "common/result.hpp"

namespace p2pd::exec {

enum class ExecutorChoice { automatic, cuda, cpu };
enum class ExecutorKind { cpu, cuda };

std::string_view to_string(ExecutorChoice choice);
std::string_view to_string(ExecutorKind kind);

struct ExecutorInfo {
  ExecutorKind kind = ExecutorKind::cpu;
  std::string device;  // the GPU's name for cuda; empty for cpu
};

struct CudaDevice {
  int index = 0;
  std::string name;
  std::size_t memory_bytes = 0;
};

// Finds a usable CUDA device (creates a context on it to prove it works).
// Fails when the build has no CUDA or no device answers.
Result<CudaDevice> probe_cuda();

// automatic: CUDA when probe_cuda() works, else CPU (logged); cuda: an error
// when no device works; cpu: CPU.
Result<ExecutorInfo> select_executor(ExecutorChoice choice);

}  // namespace p2pd::exec
