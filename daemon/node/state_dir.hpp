#pragma once
// The state dir belongs to one p2pd at a time: an flock on p2pd.lock (held for
// the process's life, released by the kernel even on SIGKILL) keeps a second
// daemon from sharing the identity and, later, the Raft log.

#include <filesystem>

#include "common/result.hpp"

namespace p2pd::node {

class StateDirLock {
 public:
  // Creates the directory (mode 0700) if needed and takes the lock.
  static Result<StateDirLock> acquire(const std::filesystem::path& state_dir);

  StateDirLock(StateDirLock&& other) noexcept;
  StateDirLock& operator=(StateDirLock&&) = delete;
  StateDirLock(const StateDirLock&) = delete;
  StateDirLock& operator=(const StateDirLock&) = delete;
  ~StateDirLock();

 private:
  explicit StateDirLock(int fd) : m_fd(fd) {}
  int m_fd = -1;
};

}  // namespace p2pd::node
