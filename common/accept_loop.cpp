#include "common/accept_loop.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/log_limiter.hpp"

namespace p2pd {
namespace {

// Out of descriptors or memory (or any other lasting failure): wait this
// long before accepting again rather than spin on a listener that stays
// readable.
constexpr auto kResourcePause = std::chrono::milliseconds(100);

}  // namespace

AcceptLoop::AcceptLoop(std::vector<int> listeners, std::string what, log::Category category)
    : m_listeners(std::move(listeners)), m_what(std::move(what)), m_category(category) {}

AcceptLoop::~AcceptLoop() {
  stop();
  if (m_wake_fd >= 0) ::close(m_wake_fd);
}

bool AcceptLoop::start(Handler handler) {
  if (m_thread.joinable()) return true;
  if (m_wake_fd < 0) m_wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (m_wake_fd < 0) return false;
  m_handler = std::move(handler);
  m_thread = std::thread([this] { run(); });
  return true;
}

void AcceptLoop::stop() {
  if (!m_thread.joinable()) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto written = ::write(m_wake_fd, &one, sizeof one);
  m_thread.join();
}

void AcceptLoop::run() {
  log::Limiter errors(3, std::chrono::minutes(1));
  std::vector<pollfd> watched;
  for (int fd : m_listeners) watched.push_back(pollfd{fd, POLLIN, 0});
  watched.push_back(pollfd{m_wake_fd, POLLIN, 0});
  for (;;) {
    for (auto& w : watched) w.revents = 0;
    if (::poll(watched.data(), watched.size(), -1) < 0) {
      if (errno == EINTR) continue;
      log::error(m_category, "{}: poll failed: {}; no longer accepting", m_what, std::strerror(errno));
      return;
    }
    if (watched.back().revents != 0) return;
    for (std::size_t i = 0; i + 1 < watched.size(); ++i) {
      if (watched[i].revents == 0) continue;
      const int fd = ::accept4(watched[i].fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        m_handler(fd, watched[i].fd);
        continue;
      }
      const int error = errno;
      // accept(2): these, and the network errors of a connection that died
      // while queued, concern that connection only; accept again at once.
      if (error == EAGAIN || error == EWOULDBLOCK || error == EINTR || error == ECONNABORTED || error == EPROTO ||
          error == ENETDOWN || error == ENOPROTOOPT || error == EHOSTDOWN || error == ENONET || error == EHOSTUNREACH ||
          error == EOPNOTSUPP || error == ENETUNREACH) {
        continue;
      }
      if (const auto held_back = errors.admit()) {
        log::warn(m_category, "{}: accept failed: {}{}", m_what, std::strerror(error), log::held_back_note(*held_back));
      }
      std::this_thread::sleep_for(kResourcePause);
    }
  }
}

}  // namespace p2pd
