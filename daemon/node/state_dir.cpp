#include "daemon/node/state_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/atomic_file.hpp"

namespace p2pd::node {

Result<StateDirLock> StateDirLock::acquire(const std::filesystem::path& state_dir) {
  if (auto created = create_directories(state_dir, 0700); !created) {
    return make_error(created.error().code, "state dir: {}", created.error().message);
  }
  const auto lock_path = state_dir / "p2pd.lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return make_error(errno == EACCES ? ErrorCode::permission_denied : ErrorCode::io, "cannot open {}: {}",
                      lock_path.string(), std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char pid[32] = {};
    const ssize_t n = ::pread(fd, pid, sizeof pid - 1, 0);
    ::close(fd);
    if (err == EWOULDBLOCK) {
      std::string holder = n > 0 ? std::string(pid, static_cast<std::size_t>(n)) : "unknown";
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      return make_error(ErrorCode::already_exists, "state dir {} is in use by another p2pd (pid {})",
                        state_dir.string(), holder);
    }
    return make_error(ErrorCode::io, "cannot lock {}: {}", lock_path.string(), std::strerror(err));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    ::close(fd);
    return make_error(ErrorCode::io, "cannot write {}: {}", lock_path.string(), std::strerror(errno));
  }
  return StateDirLock(fd);
}

StateDirLock::StateDirLock(StateDirLock&& other) noexcept : m_fd(other.m_fd) {
  other.m_fd = -1;
}

StateDirLock::~StateDirLock() {
  if (m_fd >= 0) ::close(m_fd);
}

}  // namespace p2pd::node
