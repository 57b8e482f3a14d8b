// p2pd under systemd (Type=notify): READY=1 only once p2pctl gets answers
// and the node is in a pool, STOPPING=1 on SIGTERM, the watchdog fed; and
// its log lines as journald and log shippers want them. The tests play
// systemd's part: they own the NOTIFY_SOCKET datagram socket and read what
// p2pd sends, and set JOURNAL_STREAM as systemd does.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/support/notify_socket.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_daemon.hpp"

using namespace p2pd::test;
using namespace std::chrono_literals;

TEST_CASE("systemd notify: READY once serving and STOPPING on SIGTERM", "[integration]") {
  TempDir dir;
  NotifySocket notify(dir.path() / "notify.sock");
  const auto socket = dir.path() / "a.sock";
  ChildProcess daemon({p2pd_binary(), "--config", "/dev/null", "--listen", "127.0.0.1:0", "--control-socket",
                       socket.string(), "--state-dir", (dir.path() / "a").string()},
                      dir.path() / "a.log", dir.path() / "a.log",
                      {"NOTIFY_SOCKET=" + (dir.path() / "notify.sock").string()});
  const std::string ready = notify.receive(30s);
  INFO("log: " << read_file(dir.path() / "a.log"));  // read now: what it logged until READY, or 30 s
  REQUIRE_THAT(ready, Catch::Contains("READY=1"));
  CHECK_THAT(ready, Catch::Contains("STATUS=in a pool with 0 peers"));
  // READY came after the control socket serves: the very next call answers.
  CHECK(run_command({p2pctl_binary(), "--socket", socket.string(), "status"}).status.exited_with(0));

  daemon.send_signal(SIGTERM);
  std::string stopping;
  for (int i = 0; i < 20 && stopping.find("STOPPING=1") == std::string::npos; ++i) stopping = notify.receive(15s);
  CHECK_THAT(stopping, Catch::Contains("STOPPING=1"));
  CHECK_THAT(stopping, Catch::Contains("STATUS=received SIGTERM: leaving the pool"));
  const auto status = daemon.wait_for(15s);
  REQUIRE(status);
  CHECK(status->exited_with(0));
}

TEST_CASE("systemd notify: READY waits until the node has joined its pool, the watchdog is fed", "[integration]") {
  TempDir dir;
  NotifySocket notify(dir.path() / "notify.sock");
  // A port nothing listens on yet: the bootstrap peer starts later. Below
  // the ephemeral range (32768 and up), so no other test's connection takes
  // it meanwhile, nor can the joiner's own dial be given it as its source
  // port (a TCP self-connect).
  const int port = [] {
    for (int candidate = 20000 + static_cast<int>(::getpid() % 10000), tries = 0; tries < 200;
         ++tries, candidate = 20000 + (candidate - 20000 + 37) % 12000) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<std::uint16_t>(candidate));
      const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
      ::close(fd);
      if (free) return candidate;
    }
    FAIL("no free port in 20000..31999");
    return 0;
  }();
  const std::string bootstrap = "127.0.0.1:" + std::to_string(port);
  const auto socket = dir.path() / "b.sock";
  ChildProcess joiner({p2pd_binary(), "--config", "/dev/null", "--listen", "127.0.0.1:0", "--control-socket",
                       socket.string(), "--state-dir", (dir.path() / "b").string(), "--bootstrap", bootstrap},
                      dir.path() / "b.log", dir.path() / "b.log",
                      {"NOTIFY_SOCKET=" + (dir.path() / "notify.sock").string(), "WATCHDOG_USEC=1000000"});
  // Its bootstrap peer does not answer: p2pctl is served, but it is not
  // ready, says why, and feeds the watchdog every half second (4 s: at
  // least 3 pings even if start-up took a while).
  std::string before;
  const auto until = std::chrono::steady_clock::now() + 4s;
  while (std::chrono::steady_clock::now() < until) before += notify.receive(200ms) + "\n";
  INFO("log: " << read_file(dir.path() / "b.log"));
  CHECK(before.find("READY=1") == std::string::npos);
  CHECK_THAT(before, Catch::Contains("STATUS=waiting for a bootstrap peer to answer (" + bootstrap + ")"));
  std::size_t pings = 0;
  for (auto at = before.find("WATCHDOG=1"); at != std::string::npos; at = before.find("WATCHDOG=1", at + 1)) ++pings;
  CHECK(pings >= 3);
  CHECK(run_command({p2pctl_binary(), "--socket", socket.string(), "status"}).status.exited_with(0));

  // The bootstrap peer comes up: the joiner joins, then is ready.
  ChildProcess founder({p2pd_binary(), "--config", "/dev/null", "--listen", bootstrap, "--control-socket",
                        (dir.path() / "a.sock").string(), "--state-dir", (dir.path() / "a").string()},
                       dir.path() / "a.log", dir.path() / "a.log");
  std::string ready;
  for (int i = 0; i < 400 && ready.find("READY=1") == std::string::npos; ++i) ready = notify.receive(30s);
  INFO("joiner's log: " << read_file(dir.path() / "b.log") << "\nfounder's log: " << read_file(dir.path() / "a.log"));
  REQUIRE_THAT(ready, Catch::Contains("READY=1"));
  CHECK_THAT(ready, Catch::Contains("STATUS=in a pool with 1 peer;"));
  joiner.send_signal(SIGTERM);
  const auto status = joiner.wait_for(15s);
  REQUIRE(status);
  CHECK(status->exited_with(0));
}

namespace {

// Runs p2pd until p2pctl gets an answer, then SIGTERM; its stderr's lines.
std::vector<std::string> log_lines_of_a_run(const TempDir& dir, const std::string& name,
                                            const std::vector<std::string>& extra_args, bool journal) {
  const auto log = dir.path() / (name + ".log");
  std::ofstream(log).close();
  std::vector<std::string> env;
  if (journal) {
    struct stat st {};
    REQUIRE(::stat(log.c_str(), &st) == 0);  // systemd names the stream by device and inode
    env.push_back(fmt::format("JOURNAL_STREAM={}:{}", st.st_dev, st.st_ino));
  }
  const auto socket = dir.path() / (name + ".sock");
  std::vector<std::string> argv{p2pd_binary(),   "--config",    "/dev/null",
                                "--listen",      "127.0.0.1:0", "--control-socket",
                                socket.string(), "--state-dir", (dir.path() / name).string()};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  ChildProcess daemon(argv, log, log, env);
  CHECK(eventually(
      [&] {
        return run_command({p2pctl_binary(), "--socket", socket.string(), "status"}).status.exited_with(0);
      },
      30s));
  daemon.send_signal(SIGTERM);
  const auto status = daemon.wait_for(15s);
  REQUIRE(status);
  CHECK(status->exited_with(0));
  std::vector<std::string> lines;
  std::istringstream in(read_file(log));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("logs: journald gets priorities and no second timestamp, --log-format json is one object a line",
          "[integration]") {
  TempDir dir;
  // Under journald: "<N>category: message", N the syslog priority.
  const auto journal = log_lines_of_a_run(dir, "journal", {}, true);
  REQUIRE(journal.size() >= 3);
  const std::regex journal_line(R"(<[3467]>(node|control|net|exec|config|chord|raft|sched|store|nat|trace): .+)");
  for (const auto& line : journal) {
    INFO(line);
    CHECK(std::regex_match(line, journal_line));
  }
  // JSON for log shippers: every line an object with the four fields.
  const auto json_lines = log_lines_of_a_run(dir, "json", {"--log-format", "json"}, false);
  REQUIRE(json_lines.size() >= 3);
  bool saw_stopped = false;
  for (const auto& line : json_lines) {
    INFO(line);
    const auto record = nlohmann::json::parse(line, nullptr, false);
    REQUIRE(record.is_object());
    CHECK(record.size() == 4);
    CHECK(std::regex_match(record.value("time", ""), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
    CHECK(std::regex_match(record.value("level", ""), std::regex("trace|debug|info|warn|error")));
    CHECK_FALSE(record.value("category", "").empty());
    saw_stopped = saw_stopped || record.value("message", "") == "stopped";
  }
  CHECK(saw_stopped);
}
