#include "daemon/control/control_listener.hpp"

#include <sys/socket.h>
#include <sys/stat.h>  // umask
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

#include "common/log.hpp"
#include "common/log_limiter.hpp"
#include "daemon/control/control_socket.hpp"

namespace p2pd::control {
namespace {

// Connections waiting to be accepted; p2pctl calls are short.
constexpr int kBacklog = 64;

}  // namespace

Result<std::unique_ptr<ControlListener>> ControlListener::bind(const std::filesystem::path& path) {
  std::unique_ptr<ControlListener> listener(new ControlListener());
  listener->m_listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener->m_listen_fd < 0) {
    return make_error(ErrorCode::io, "cannot create the control socket: {}", std::strerror(errno));
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string& native = path.native();
  if (native.size() + 1 > sizeof address.sun_path) {
    return make_error(ErrorCode::invalid_argument, "control socket path {} is too long", path.string());
  }
  std::memcpy(address.sun_path, native.c_str(), native.size() + 1);
  // The socket must never be world-accessible, not even for an instant, and
  // a chmod() after bind() would follow a symlink swapped in meanwhile: bind
  // under a umask that leaves exactly 0660.
  const mode_t old_umask = ::umask(0117);
  const int bound = ::bind(listener->m_listen_fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  const int bind_errno = errno;
  ::umask(old_umask);
  if (bound != 0) {
    return make_error(bind_errno == EACCES ? ErrorCode::permission_denied : ErrorCode::unavailable,
                      "cannot bind the control socket {}: {}", path.string(), std::strerror(bind_errno));
  }
  auto bound_socket = verify_control_socket(path);
  if (!bound_socket) {
    ::unlink(path.c_str());  // ours, just bound, but not as it must be
    return bound_socket.error();
  }
  listener->m_inode = bound_socket->inode;
  listener->m_group = bound_socket->group;  // the directory's, if set-group-id
  if (::listen(listener->m_listen_fd, kBacklog) != 0) {
    const int listen_errno = errno;
    remove_control_socket(path, listener->m_inode);
    return make_error(ErrorCode::io, "cannot listen on the control socket {}: {}", path.string(),
                      std::strerror(listen_errno));
  }
  return listener;
}

ControlListener::~ControlListener() {
  stop();
  if (m_listen_fd >= 0) ::close(m_listen_fd);
}

bool ControlListener::start(Accepted accepted) {
  m_loop = std::make_unique<AcceptLoop>(std::vector<int>{m_listen_fd}, "control socket", log::Category::control);
  return m_loop->start([accepted = std::move(accepted),
                        errors = std::make_shared<log::Limiter>(3, std::chrono::minutes(1))](int fd, int /*listener*/) {
    auto caller = read_caller(fd);
    if (!caller) {
      if (errors->admit()) log::warn(log::Category::control, "{}", caller.error().message);
      ::close(fd);
      return;
    }
    accepted(fd, std::move(*caller));
  });
}

void ControlListener::stop() {
  if (m_loop) m_loop->stop();
}

}  // namespace p2pd::control
