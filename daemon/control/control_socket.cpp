#include "daemon/control/control_socket.hpp"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/atomic_file.hpp"
#include "common/log.hpp"
#include "common/unix_socket.hpp"

namespace p2pd::control {
namespace {

// True when something accepts connections on the unix socket at `path`.
Result<bool> socket_is_live(const std::filesystem::path& path) {
  const int err = probe_unix_socket(path);
  if (err == 0) return true;
  if (err == ECONNREFUSED || err == ENOENT) return false;
  // EAGAIN: a live listener with a full backlog.
  if (err == EAGAIN) return true;
  return make_error(err == EACCES || err == EPERM ? ErrorCode::permission_denied : ErrorCode::io,
                    "cannot probe existing control socket {}: {}", path.string(), std::strerror(err));
}

}  // namespace

Result<void> prepare_control_socket_path(const std::filesystem::path& path) {
  if (path.native().size() + 1 > sizeof(sockaddr_un{}.sun_path)) {
    return make_error(ErrorCode::invalid_argument, "control socket path {} is too long ({} bytes, at most {})",
                      path.string(), path.native().size(), sizeof(sockaddr_un{}.sun_path) - 1);
  }
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  if (auto made = create_directories(dir, kControlDirMode); !made) {
    return make_error(made.error().code, "control socket: {}", made.error().message);
  }
  struct stat dir_st {};
  if (::stat(dir.c_str(), &dir_st) != 0) {
    return make_error(ErrorCode::io, "cannot stat {}: {}", dir.string(), std::strerror(errno));
  }
  if (dir_st.st_uid != ::geteuid() && dir_st.st_uid != 0) {
    return make_error(ErrorCode::permission_denied,
                      "control socket directory {} belongs to uid {}, not to this user or root; refusing to use it",
                      dir.string(), dir_st.st_uid);
  }
  if ((dir_st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (dir_st.st_mode & S_ISVTX) == 0) {
    return make_error(ErrorCode::permission_denied,
                      "control socket directory {} is writable by others (mode {:o}); refusing to use it", dir.string(),
                      dir_st.st_mode & 07777);
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return make_error(ErrorCode::io, "cannot stat {}: {}", path.string(), std::strerror(errno));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return make_error(ErrorCode::already_exists, "{} exists and is not a socket; refusing to replace it",
                      path.string());
  }
  auto live = socket_is_live(path);
  if (!live) return live.error();
  if (*live) {
    return make_error(ErrorCode::already_exists, "another p2pd is serving on control socket {}", path.string());
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return make_error(ErrorCode::io, "cannot remove stale control socket {}: {}", path.string(), std::strerror(errno));
  }
  log::info(log::Category::control, "removed stale control socket {}", path.string());
  return {};
}

Result<BoundControlSocket> verify_control_socket(const std::filesystem::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    return make_error(ErrorCode::io, "control socket {} vanished after bind", path.string());
  }
  if ((st.st_mode & 07777) != kControlSocketMode) {
    return make_error(ErrorCode::permission_denied, "control socket {} has mode {:o}, expected {:o}", path.string(),
                      st.st_mode & 07777, kControlSocketMode);
  }
  return BoundControlSocket{st.st_ino, st.st_gid};
}

void remove_control_socket(const std::filesystem::path& path, ino_t inode) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == inode) ::unlink(path.c_str());
}

}  // namespace p2pd::control
