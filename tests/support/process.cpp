#include "tests/support/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/temp_dir.hpp"

extern char** environ;

namespace p2pd::test {
namespace {

ExitStatus decode(int raw) {
  ExitStatus s;
  if (WIFEXITED(raw)) s.code = WEXITSTATUS(raw);
  if (WIFSIGNALED(raw)) s.signal = WTERMSIG(raw);
  return s;
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& stdout_path,
                           const std::filesystem::path& stderr_path, const std::vector<std::string>& extra_env) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);

  // extra_env entries replace inherited ones of the same name (getenv would
  // otherwise return the first).
  auto name_of = [](const std::string& assignment) { return assignment.substr(0, assignment.find('=')); };
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const bool overridden = std::any_of(extra_env.begin(), extra_env.end(),
                                        [&](const std::string& x) { return name_of(x) == name_of(entry); });
    if (!overridden) env_strings.push_back(entry);
  }
  for (const auto& e : extra_env) env_strings.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> c_argv;
  for (auto& a : args) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);

  const int rc = posix_spawn(&m_pid, c_argv[0], &actions, nullptr, c_argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("posix_spawn " + argv.at(0) + " failed: " + std::to_string(rc));
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept : m_pid(other.m_pid), m_status(other.m_status) {
  other.m_pid = -1;
}

ChildProcess::~ChildProcess() {
  if (running()) kill();
}

void ChildProcess::send_signal(int signal) const {
  if (m_pid > 0 && !m_status) ::kill(m_pid, signal);
}

std::optional<ExitStatus> ChildProcess::poll() {
  if (m_status || m_pid <= 0) return m_status;
  int raw = 0;
  const pid_t r = ::waitpid(m_pid, &raw, WNOHANG);
  if (r == m_pid) m_status = decode(raw);
  return m_status;
}

std::optional<ExitStatus> ChildProcess::wait_for(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (!poll()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  return m_status;
}

ExitStatus ChildProcess::kill() {
  if (m_status) return *m_status;
  // Never kill(-1): a moved-from or failed child must not signal everything.
  if (m_pid <= 0) return ExitStatus{};
  ::kill(m_pid, SIGKILL);
  int raw = 0;
  while (::waitpid(m_pid, &raw, 0) < 0 && errno == EINTR) {
  }
  m_status = decode(raw);
  return *m_status;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::vector<std::string>& extra_env) {
  TempDir dir;
  const auto out_path = dir.path() / "out", err_path = dir.path() / "err";
  ChildProcess child(argv, out_path, err_path, extra_env);
  CommandResult result;
  if (auto status = child.wait_for(timeout)) {
    result.status = *status;
  } else {
    result.status = child.kill();
  }
  result.out = read_file(out_path);
  result.err = read_file(err_path);
  return result;
}

std::optional<long> rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return std::nullopt;
}

}  // namespace p2pd::test
