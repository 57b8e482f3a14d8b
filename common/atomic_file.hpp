#pragma once
// Crash-safe file replacement: write a temporary file, fsync it, rename it
// over the target, fsync the directory. A crash leaves the old file or the
// new one, never a torn mix.

#include <sys/types.h>
#include <filesystem>
#include <span>
#include <string>

#include "common/result.hpp"

namespace p2pd {

Result<void> write_file_atomically(const std::filesystem::path& path, std::span<const char> data, mode_t mode);

// Reads a whole file, refusing anything larger than `max_bytes`.
Result<std::string> read_small_file(const std::filesystem::path& path, std::size_t max_bytes);

// mkdir -p; the last component gets `mode` when it is created.
Result<void> create_directories(const std::filesystem::path& path, mode_t mode);

}  // namespace p2pd
