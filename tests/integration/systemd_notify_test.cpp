// p2pd under systemd (Type=notify): READY=1 only once p2pctl gets answers,
// STOPPING=1 on SIGTERM. The test plays systemd's part: it owns the
// NOTIFY_SOCKET datagram socket and reads what p2pd sends.
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/support/temp_dir.hpp"
#include "tests/support/test_daemon.hpp"

using namespace p2pd::test;
using namespace std::chrono_literals;

namespace {

class NotifySocket {
 public:
  explicit NotifySocket(const std::filesystem::path& path) : m_path(path) {
    m_fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~NotifySocket() { ::close(m_fd); }

  // The next datagram, or empty after `timeout`.
  std::string receive(std::chrono::milliseconds timeout) {
    pollfd p{m_fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
    char buffer[4096];
    const ssize_t n = ::recv(m_fd, buffer, sizeof buffer, 0);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
  }

 private:
  std::filesystem::path m_path;
  int m_fd = -1;
};

}  // namespace

TEST_CASE("systemd notify: READY once serving and STOPPING on SIGTERM", "[integration]") {
  TempDir dir;
  NotifySocket notify(dir.path() / "notify.sock");
  const auto socket = dir.path() / "a.sock";
  ChildProcess daemon({p2pd_binary(), "--config", "/dev/null", "--listen", "127.0.0.1:0", "--control-socket",
                       socket.string(), "--state-dir", (dir.path() / "a").string()},
                      dir.path() / "a.log", dir.path() / "a.log",
                      {"NOTIFY_SOCKET=" + (dir.path() / "notify.sock").string()});
  const std::string ready = notify.receive(30s);
  INFO("log: " << read_file(dir.path() / "a.log"));
  REQUIRE_THAT(ready, Catch::Contains("READY=1"));
  CHECK_THAT(ready, Catch::Contains("STATUS=serving as node "));
  // READY came after the control socket serves: the very next call answers.
  CHECK(run_command({p2pctl_binary(), "--socket", socket.string(), "status"}).status.exited_with(0));

  daemon.send_signal(SIGTERM);
  const std::string stopping = notify.receive(15s);
  CHECK_THAT(stopping, Catch::Contains("STOPPING=1"));
  const auto status = daemon.wait_for(15s);
  REQUIRE(status);
  CHECK(status->exited_with(0));
}
