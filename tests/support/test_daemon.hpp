#pragma once
// A real p2pd on loopback for integration tests: its own state dir and
// control socket under a temp dir, port 0, driven through the real p2pctl.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/process.hpp"

namespace p2pd::test {

// Set by CMake: the binaries under test.
std::string p2pd_binary();
std::string p2pctl_binary();

class TestDaemon {
 public:
  // `dir` holds <name>/ (state), <name>.sock and <name>.log.
  TestDaemon(std::filesystem::path dir, std::string name, std::vector<std::string> extra_args = {});
  ~TestDaemon();

  // Spawns p2pd; does not wait.
  void spawn();
  // Spawns and polls `p2pctl status` until it answers; false after `timeout`.
  bool start(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGTERM and wait; the exit status (SIGKILL after `timeout`).
  ExitStatus stop(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  ExitStatus kill();

  // p2pctl --socket <ours> ARGS...
  CommandResult ctl(const std::vector<std::string>& args,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  // p2pctl --json status, parsed; null json on failure.
  nlohmann::json status_json() const;
  // p2pctl --json ARGS..., parsed; null json on failure.
  nlohmann::json ctl_json(const std::vector<std::string>& args) const;

  [[nodiscard]] ChildProcess& process() { return *m_process; }
  [[nodiscard]] const std::filesystem::path& socket() const { return m_socket; }
  [[nodiscard]] const std::filesystem::path& state_dir() const { return m_state; }
  [[nodiscard]] const std::filesystem::path& log_path() const { return m_log; }
  [[nodiscard]] std::string log() const { return read_file(m_log); }
  // Before spawn(): NAME=VALUE added to the daemon's environment.
  void add_env(std::string assignment) { m_env.push_back(std::move(assignment)); }
  // Before spawn(): the options after the test's own (a restart may join
  // through another peer).
  void set_extra_args(std::vector<std::string> args) { m_extra_args = std::move(args); }
  // Before spawn(): put the control socket elsewhere than <dir>/<name>.sock.
  void set_socket(std::filesystem::path socket) { m_socket = std::move(socket); }

 private:
  std::filesystem::path m_dir;
  std::string m_name;
  std::vector<std::string> m_extra_args;
  std::vector<std::string> m_env;
  std::filesystem::path m_socket, m_state, m_log;
  std::unique_ptr<ChildProcess> m_process;
};

// Seconds of steady time since `start`, for the figures tests print.
double seconds_since(std::chrono::steady_clock::time_point start);

// How many times slower than a plain build the daemons run here: the
// P2PD_TEST_SLOWDOWN environment variable (1 to 20; ctest sets it from the
// CMake variable of that name, 4 in the tsan preset), else 1. Bounds on how
// long something took are multiplied by it; the figures printed are not.
double slowdown();

// Polls `condition` until true or `timeout`; true when it held.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

}  // namespace p2pd::test
