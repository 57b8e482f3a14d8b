// Fuzz target: the .npy header parser (common/npy), which reads the files
// users hand to p2pctl submit. Whatever the bytes, a header it accepts
// describes exactly the bytes there are, within the limits.

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/npy.hpp"
#include "tests/fuzz/fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace p2pd;
  const std::span<const std::uint8_t> bytes(data, size);
  if (auto header = npy::parse_header(bytes, size)) {
    FUZZ_CHECK(header->rows > 0 && header->cols > 0);
    FUZZ_CHECK(header->rows <= npy::kMaxDim && header->cols <= npy::kMaxDim);
    FUZZ_CHECK(header->header_bytes <= size);
    FUZZ_CHECK(header->header_bytes + header->data_bytes() == size);
  }
  // The same prefix of a file claimed larger or smaller than it is.
  (void)npy::parse_header(bytes, size + 4);
  if (size > 0) (void)npy::parse_header(bytes.first(size / 2), size);
  // A tight byte limit.
  (void)npy::parse_header(bytes, size, 64);
  return 0;
}
