#include "tests/support/test_daemon.hpp"

#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace p2pd::test {

std::string p2pd_binary() {
  return P2PD_TEST_P2PD_BINARY;
}
std::string p2pctl_binary() {
  return P2PD_TEST_P2PCTL_BINARY;
}

double slowdown() {
  const char* text = std::getenv("P2PD_TEST_SLOWDOWN");
  if (text == nullptr) return 1;
  char* end = nullptr;
  const double factor = std::strtod(text, &end);
  return end != text && *end == '\0' && factor >= 1 && factor <= 20 ? factor : 1;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(5);
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(200));
  }
}

TestDaemon::TestDaemon(std::filesystem::path dir, std::string name, std::vector<std::string> extra_args)
    : m_dir(std::move(dir)),
      m_name(std::move(name)),
      m_extra_args(std::move(extra_args)),
      m_socket(m_dir / (m_name + ".sock")),
      m_state(m_dir / m_name),
      m_log(m_dir / (m_name + ".log")) {}

TestDaemon::~TestDaemon() {
  if (m_process && m_process->running()) stop(std::chrono::seconds(5));
}

void TestDaemon::spawn() {
  auto given = [&](const std::string& option) {
    return std::find(m_extra_args.begin(), m_extra_args.end(), option) != m_extra_args.end();
  };
  std::vector<std::string> argv = {p2pd_binary(),     "--listen",    "127.0.0.1:0",   "--control-socket",
                                   m_socket.string(), "--state-dir", m_state.string()};
  // Never read the machine's /etc/p2pd/p2pd.conf; a test that names its own
  // file controls the log level through it.
  if (!given("--config")) {
    argv.insert(argv.end(), {"--config", "/dev/null"});
    if (!given("--log-level")) argv.insert(argv.end(), {"--log-level", "debug"});
  }
  for (const auto& a : m_extra_args) argv.push_back(a);
  m_process = std::make_unique<ChildProcess>(argv, m_log, m_log, m_env);
}

bool TestDaemon::start(std::chrono::milliseconds timeout) {
  spawn();
  return eventually(
             [&] {
               if (!m_process->running() || m_process->poll()) return true;  // died: stop polling
               return ctl({"status"}, std::chrono::seconds(5)).status.exited_with(0);
             },
             timeout) &&
         m_process->running();
}

ExitStatus TestDaemon::stop(std::chrono::milliseconds timeout) {
  if (!m_process) return {};
  m_process->send_signal(SIGTERM);
  if (auto status = m_process->wait_for(timeout)) return *status;
  return m_process->kill();
}

ExitStatus TestDaemon::kill() {
  return m_process ? m_process->kill() : ExitStatus{};
}

CommandResult TestDaemon::ctl(const std::vector<std::string>& args, std::chrono::milliseconds timeout) const {
  std::vector<std::string> argv = {p2pctl_binary(), "--socket", m_socket.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, timeout);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

nlohmann::json TestDaemon::status_json() const {
  return ctl_json({"status"});
}

nlohmann::json TestDaemon::ctl_json(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto result = ctl(argv);
  if (!result.status.exited_with(0)) return nullptr;
  return nlohmann::json::parse(result.out, nullptr, /*allow_exceptions=*/false);
}

}  // namespace p2pd::test
