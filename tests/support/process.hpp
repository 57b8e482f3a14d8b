#pragma once
// Child processes for integration tests: spawn with output to files, wait
// with deadlines (never sleep and hope), kill on scope exit.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace p2pd::test {

struct ExitStatus {
  int code = -1;   // exit code when exited normally
  int signal = 0;  // the signal that killed it, else 0
  [[nodiscard]] bool exited_with(int expected) const { return signal == 0 && code == expected; }
};

class ChildProcess {
 public:
  // stdout and stderr go to the given files (appended).
  ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& stdout_path,
               const std::filesystem::path& stderr_path, const std::vector<std::string>& extra_env = {});
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&&) = delete;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  [[nodiscard]] pid_t pid() const { return m_pid; }
  void send_signal(int signal) const;
  // nullopt while it still runs.
  std::optional<ExitStatus> poll();
  // nullopt when it did not end within `timeout`.
  std::optional<ExitStatus> wait_for(std::chrono::milliseconds timeout);
  // SIGKILL and reap.
  ExitStatus kill();
  [[nodiscard]] bool running() const { return m_pid > 0 && !m_status; }

 private:
  pid_t m_pid = -1;
  std::optional<ExitStatus> m_status;
};

struct CommandResult {
  ExitStatus status;
  std::string out;
  std::string err;
};

// Runs to completion (killed after `timeout`, then status.signal == SIGKILL).
CommandResult run_command(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30),
                          const std::vector<std::string>& extra_env = {});

std::string read_file(const std::filesystem::path& path);

// Resident set size of a live process in KiB, from /proc.
std::optional<long> rss_kib(pid_t pid);

}  // namespace p2pd::test
