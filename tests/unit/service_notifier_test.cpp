// systemd's notify protocol as p2pd speaks it, read off a NOTIFY_SOCKET the
// test owns: no READY=1 on a reload before start-up completed, one
// STOPPING=1, status lines only when they change.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "daemon/node/service_notifier.hpp"
#include "tests/support/temp_dir.hpp"

using p2pd::node::ServiceNotifier;

namespace {

class NotifySocket {
 public:
  explicit NotifySocket(const std::filesystem::path& path) {
    m_fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
    ::unsetenv("WATCHDOG_USEC");
  }
  ~NotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    ::close(m_fd);
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  // Every datagram waiting now, joined by '|'.
  std::string drain() {
    std::string out;
    pollfd p{m_fd, POLLIN, 0};
    while (::poll(&p, 1, 0) > 0) {
      char buffer[4096];
      const ssize_t n = ::recv(m_fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      out += (out.empty() ? "" : "|") + std::string(buffer, static_cast<std::size_t>(n));
    }
    return out;
  }

 private:
  int m_fd = -1;
};

}  // namespace

TEST_CASE("service notifier: READY once, reloads only while running, STOPPING once", "[unit][systemd]") {
  p2pd::test::TempDir dir;
  NotifySocket socket(dir.path() / "notify.sock");
  ServiceNotifier service;
  CHECK_FALSE(service.watchdog_interval());  // no WATCHDOG_USEC: no pings

  service.status("joining");
  CHECK(socket.drain() == "STATUS=joining");
  service.status("joining");  // unchanged: nothing sent
  CHECK(socket.drain().empty());
  service.reloading();  // a SIGHUP while starting: systemd must not see READY=1 yet
  service.reloaded();
  CHECK(socket.drain().empty());

  service.ready("in a pool");
  CHECK(socket.drain() == "READY=1\nSTATUS=in a pool");
  service.ready("in a pool again");  // once only
  CHECK(socket.drain().empty());
  service.reloading();
  service.reloaded();
  const std::string reload = socket.drain();
  CHECK(reload.starts_with("RELOADING=1\nMONOTONIC_USEC="));
  CHECK(reload.ends_with("|READY=1\nSTATUS=in a pool"));

  service.stopping("leaving");
  service.stopping("leaving again");
  service.reloading();  // after STOPPING=1: no reload, no READY=1
  service.reloaded();
  CHECK(socket.drain() == "STOPPING=1\nSTATUS=leaving");
}

TEST_CASE("service notifier: the watchdog is fed every half WatchdogSec", "[unit][systemd]") {
  p2pd::test::TempDir dir;
  NotifySocket socket(dir.path() / "notify.sock");
  ::setenv("WATCHDOG_USEC", "2000000", 1);
  ServiceNotifier service;
  ::unsetenv("WATCHDOG_USEC");
  REQUIRE(service.watchdog_interval());
  CHECK(*service.watchdog_interval() == std::chrono::seconds(1));
  const auto start = ServiceNotifier::Clock::now();
  service.tick(start);
  CHECK(socket.drain() == "WATCHDOG=1");
  service.tick(start + std::chrono::milliseconds(500));  // not yet due
  CHECK(socket.drain().empty());
  service.tick(start + std::chrono::milliseconds(1000));
  CHECK(socket.drain() == "WATCHDOG=1");
}
