#pragma once
// systemd's side of sd_notify(3) for tests: a NOTIFY_SOCKET datagram socket
// the test owns, from which it reads what p2pd sends.

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace p2pd::test {

class NotifySocket {
 public:
  explicit NotifySocket(const std::filesystem::path& path) {
    m_fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (m_fd < 0 || ::bind(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      if (m_fd >= 0) ::close(m_fd);
      throw std::runtime_error("cannot bind the notify socket " + path.string());
    }
  }
  ~NotifySocket() { ::close(m_fd); }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  // The next datagram, or empty after `timeout`.
  std::string receive(std::chrono::milliseconds timeout) {
    pollfd p{m_fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
    char buffer[4096];
    const ssize_t n = ::recv(m_fd, buffer, sizeof buffer, 0);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
  }

  // Every datagram waiting now, joined by '|'.
  std::string drain() {
    std::string out;
    for (std::string next = receive(std::chrono::milliseconds(0)); !next.empty();
         next = receive(std::chrono::milliseconds(0))) {
      out += (out.empty() ? "" : "|") + next;
    }
    return out;
  }

 private:
  int m_fd = -1;
};

}  // namespace p2pd::test
