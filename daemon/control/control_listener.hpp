#pragma once
// The control socket's listener. gRPC could bind the socket itself, but then
// nobody would see who connects: we accept each connection, read its
// caller's credentials (caller.hpp) and only then hand the descriptor to a
// gRPC server (AddInsecureChannelFromFd).

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <memory>

#include "common/accept_loop.hpp"
#include "common/result.hpp"
#include "daemon/control/caller.hpp"

namespace p2pd::control {

class ControlListener {
 public:
  // Called on the listener's thread with a connected, non-blocking,
  // close-on-exec descriptor it now owns.
  using Accepted = std::function<void(int fd, Caller caller)>;

  // Binds `path` (prepare_control_socket_path first) with mode 0660 and
  // listens. The umask is process-wide: call before other threads create files.
  static Result<std::unique_ptr<ControlListener>> bind(const std::filesystem::path& path);
  ~ControlListener();
  ControlListener(const ControlListener&) = delete;
  ControlListener& operator=(const ControlListener&) = delete;

  ino_t inode() const { return m_inode; }
  gid_t group() const { return m_group; }

  // Accepts on its own thread until stop(); false if it cannot start.
  bool start(Accepted accepted);
  // Stops accepting and joins the thread; connections already handed on are
  // not touched. Idempotent.
  void stop();

 private:
  ControlListener() = default;

  int m_listen_fd = -1;
  ino_t m_inode = 0;
  gid_t m_group = 0;
  std::unique_ptr<AcceptLoop> m_loop;
};

}  // namespace p2pd::control
