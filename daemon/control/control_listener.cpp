#include "daemon/control/control_listener.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/log.hpp"
#include "common/log_limiter.hpp"
#include "daemon/control/control_socket.hpp"

namespace p2pd::control {
namespace {

// Connections waiting to be accepted; p2pctl calls are short.
constexpr int kBacklog = 64;
// Out of descriptors: wait this long before accepting again rather than spin.
constexpr auto kDescriptorPause = std::chrono::milliseconds(100);

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
  auto inode = verify_control_socket(path);
  if (!inode) {
    ::unlink(path.c_str());  // ours, just bound, but not as it must be
    return inode.error();
  }
  listener->m_inode = *inode;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) listener->m_group = st.st_gid;  // the directory's, if set-group-id
  if (::listen(listener->m_listen_fd, kBacklog) != 0) {
    const int listen_errno = errno;
    remove_control_socket(path, listener->m_inode);
    return make_error(ErrorCode::io, "cannot listen on the control socket {}: {}", path.string(),
                      std::strerror(listen_errno));
  }
  listener->m_wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (listener->m_wake_fd < 0) {
    const int eventfd_errno = errno;
    remove_control_socket(path, listener->m_inode);
    return make_error(ErrorCode::io, "cannot create an eventfd: {}", std::strerror(eventfd_errno));
  }
  return listener;
}

ControlListener::~ControlListener() {
  stop();
  if (m_listen_fd >= 0) ::close(m_listen_fd);
  if (m_wake_fd >= 0) ::close(m_wake_fd);
}

void ControlListener::start(Accepted accepted) {
  m_accepted = std::move(accepted);
  m_thread = std::thread([this] { run(); });
}

void ControlListener::stop() {
  if (!m_thread.joinable()) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto written = ::write(m_wake_fd, &one, sizeof one);
  m_thread.join();
}

void ControlListener::run() {
  log::Limiter accept_errors(3, std::chrono::minutes(1));
  for (;;) {
    std::array<pollfd, 2> watched{pollfd{m_listen_fd, POLLIN, 0}, pollfd{m_wake_fd, POLLIN, 0}};
    if (::poll(watched.data(), watched.size(), -1) < 0) {
      if (errno == EINTR) continue;
      log::error(log::Category::control, "control socket: poll failed: {}; no longer accepting", std::strerror(errno));
      return;
    }
    if (watched[1].revents != 0) return;
    const int fd = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) continue;
      if (auto held_back = accept_errors.admit()) {
        log::warn(log::Category::control, "control socket: accept failed: {}{}", std::strerror(errno),
                  *held_back == 0 ? std::string() : fmt::format(" ({} more since the last report)", *held_back));
      }
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        std::this_thread::sleep_for(kDescriptorPause);
      }
      continue;
    }
    auto caller = read_caller(fd);
    if (!caller) {
      if (accept_errors.admit()) log::warn(log::Category::control, "{}", caller.error().message);
      ::close(fd);
      continue;
    }
    m_accepted(fd, std::move(*caller));
  }
}

}  // namespace p2pd::control
