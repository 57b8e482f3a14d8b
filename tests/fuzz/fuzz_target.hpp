#pragma once
// What every fuzz target is (libFuzzer's entry point, also called by the
// corpus replay), and FUZZ_CHECK: an invariant the code under test must
// keep. A broken one aborts, so libFuzzer (and the replay) reports it as a
// finding, like a crash.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

#define FUZZ_CHECK(condition)                                                                \
  do {                                                                                       \
    if (!(condition)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (false)
