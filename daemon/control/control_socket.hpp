#pragma once
// The control socket's file-system side (DESIGN.md, "Security stance": the
// socket is guarded by file permissions). gRPC binds it; these functions make
// the path safe to bind and lock its mode down afterwards.

#include <sys/types.h>
#include <filesystem>

#include "common/result.hpp"

namespace p2pd::control {

inline constexpr mode_t kControlSocketMode = 0660;  // owner and group, never others
inline constexpr mode_t kControlDirMode = 0750;

// Creates the parent directory if missing and refuses one that others could
// tamper with (owned by someone else than us or root, or writable by group or
// others without the sticky bit); removes a stale socket left by a dead
// daemon; refuses when a live daemon answers on it or when the path is
// something other than a socket.
Result<void> prepare_control_socket_path(const std::filesystem::path& path);

// What is at the control socket's path after bind: its inode (so shutdown
// removes only our own) and its group (the one served besides the owner).
struct BoundControlSocket {
  ino_t inode = 0;
  gid_t group = 0;
};

// Checks, without following links, that what is at `path` after bind is a
// socket with mode 0660.
Result<BoundControlSocket> verify_control_socket(const std::filesystem::path& path);

void remove_control_socket(const std::filesystem::path& path, ino_t inode);

}  // namespace p2pd::control
