#pragma once
// Little-endian integers and CRC-32 for the checksummed record files the
// daemon keeps (the Raft log, the trace ring): one definition of the bytes
// on disk.

#include <cstddef>
#include <cstdint>
#include <string>

namespace p2pd {

void put_u32(std::string& out, std::uint32_t v);
void put_u64(std::string& out, std::uint64_t v);
// The `bytes` low bytes of a little-endian integer at `p` (1 to 8).
std::uint64_t get_le(const char* p, int bytes);
inline std::uint32_t get_u32(const char* p) {
  return static_cast<std::uint32_t>(get_le(p, 4));
}
// CRC-32 (IEEE 802.3, as zlib computes it).
std::uint32_t crc32_of(const char* data, std::size_t size);

}  // namespace p2pd
