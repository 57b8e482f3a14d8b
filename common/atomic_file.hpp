#pragma once
// Crash-safe file replacement: write a temporary file, fsync it, rename it
// over the target, fsync the directory. A crash leaves the old file or the
// new one, never a torn mix.

#include <sys/types.h>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "common/result.hpp"

namespace p2pd {

Result<void> write_file_atomically(const std::filesystem::path& path, std::span<const char> data, mode_t mode);

// The same, for a file written piece by piece (a streamed download): append,
// then commit() (fsync, rename, fsync the directory). Destroyed without a
// commit, it removes the temporary file and the target is untouched.
class AtomicFileWriter {
 public:
  static Result<AtomicFileWriter> create(const std::filesystem::path& path, mode_t mode);
  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&&) = delete;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  Result<void> append(std::span<const char> data);
  Result<void> commit();
  [[nodiscard]] std::uint64_t written() const { return m_written; }

 private:
  AtomicFileWriter(std::filesystem::path path, std::filesystem::path tmp, int fd)
      : m_path(std::move(path)), m_tmp(std::move(tmp)), m_fd(fd) {}
  std::filesystem::path m_path;
  std::filesystem::path m_tmp;
  static constexpr std::uint64_t kWritebackStep = std::uint64_t{8} << 20;
  int m_fd = -1;
  std::uint64_t m_written = 0;
  std::uint64_t m_writeback_from = 0;  // writeback started for the bytes before
};

// Reads a whole file, refusing anything larger than `max_bytes`.
Result<std::string> read_small_file(const std::filesystem::path& path, std::size_t max_bytes);

// mkdir -p; the last component gets `mode` when it is created.
Result<void> create_directories(const std::filesystem::path& path, mode_t mode);

}  // namespace p2pd
