#pragma once
// The .npy codec for float32 C-order matrices (NumPy's format, versions 1.0,
// 2.0 and 3.0). p2pctl checks a file before sending it and the daemon checks
// it again, because a client is never trusted: every field of the header is
// validated, sizes are computed without overflow, and errors are one bounded,
// printable line.
// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace p2pd::npy {

// Each dimension is capped so that rows * cols * 4 cannot overflow and so that
// a hostile header cannot ask for a terabyte allocation.
inline constexpr std::uint64_t kMaxDim = std::uint64_t{1} << 20;
inline constexpr std::uint64_t kDefaultMaxBytes = std::uint64_t{4} << 30;
// NumPy itself refuses headers over 10 KB unless told otherwise; 64 KiB is
// generous and keeps the prefix we must read small.
inline constexpr std::size_t kMaxHeaderLen = 64 * 1024;
// The most bytes parse_header can need: the 12-byte 2.0/3.0 preamble plus the
// longest header.
inline constexpr std::size_t kMaxPrefixBytes = 12 + kMaxHeaderLen;

struct NpyHeader {
  std::uint64_t rows = 0;
  std::uint64_t cols = 0;
  std::size_t header_bytes = 0;  // offset of the data
  [[nodiscard]] std::uint64_t data_bytes() const { return rows * cols * sizeof(float); }
};

// `prefix` is the start of the file (at least the whole header; the whole
// file is fine) and `file_size` its total size, which must match the header
// exactly.
Result<NpyHeader> parse_header(std::span<const std::uint8_t> prefix, std::uint64_t file_size,
                               std::uint64_t max_bytes = kDefaultMaxBytes);

// Reads only the prefix it needs. Errors name the path.
Result<NpyHeader> read_header(const std::filesystem::path& path, std::uint64_t max_bytes = kDefaultMaxBytes);

// Loads a whole matrix, row-major; for small files (tests, references).
Result<std::vector<float>> read_matrix(const std::filesystem::path& path, NpyHeader* header_out = nullptr,
                                       std::uint64_t max_bytes = kDefaultMaxBytes);

// A version 1.0 header as np.save writes it: magic, version, length, dict,
// space padding and '\n', 64-byte aligned.
std::string header_for(std::uint64_t rows, std::uint64_t cols);

// Writes header and data atomically (a crash leaves the old file or the new).
Result<void> write_matrix(const std::filesystem::path& path, std::uint64_t rows, std::uint64_t cols,
                          std::span<const float> data);

}  // namespace p2pd::npy
