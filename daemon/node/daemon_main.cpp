#include "daemon/node/daemon_main.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <exception>

#include <fmt/format.h>
#include <systemd/sd-daemon.h>

#include "common/log.hpp"
#include "common/one_line.hpp"
#include "common/version.hpp"
#include "daemon/exec/executor_select.hpp"
#include "daemon/net/grpc_logging.hpp"
#include "daemon/node/config.hpp"
#include "daemon/node/identity.hpp"
#include "daemon/node/node.hpp"
#include "daemon/node/state_dir.hpp"

namespace p2pd::node {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

int fail(int code, const std::string& message) {
  fmt::print(stderr, "p2pd: error: {}\n", one_line(message));
  return code;
}

// A peer connection holds three descriptors (its TCP socket and both ends
// of the socketpair to gRPC, tls/secure_transport.hpp); 4096 of them need
// more than the usual soft limit of 1024. The service sets LimitNOFILE; a
// p2pd started by hand takes its hard limit (up to 65536) itself.
void raise_descriptor_limit() {
  constexpr rlim_t kWanted = 65536;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= kWanted) return;
  limit.rlim_cur = std::min(kWanted, limit.rlim_max);
  ::setrlimit(RLIMIT_NOFILE, &limit);
}

int run(const std::vector<std::string>& args) {
  auto parsed = parse_command_line(args);
  if (!parsed) return fail(kExitUsage, parsed.error().message + " (see p2pd --help)");
  switch (parsed->action) {
    case ParsedCommandLine::Action::help: fmt::print("{}", parsed->help_text); return kExitOk;
    case ParsedCommandLine::Action::version: fmt::print("p2pd {}\n", kVersion); return kExitOk;
    case ParsedCommandLine::Action::run: break;
  }
  NodeConfig config = std::move(parsed->config);
  log::set_level(config.log_level);
  log::set_format(config.log_format);
  if (config.config_file) log::info(log::Category::config, "read {}", config.config_file->string());

  raise_descriptor_limit();
  auto lock = StateDirLock::acquire(config.state_dir);
  if (!lock) return fail(kExitFailed, lock.error().message);
  auto identity = load_or_create_identity(config.state_dir);
  if (!identity) return fail(kExitFailed, identity.error().message);
  log::info(log::Category::node, "p2pd {} node {}{}", kVersion, identity->id.hex(),
            identity->created ? " (new identity)" : "");
  auto executor = exec::select_executor(config.executor);
  if (!executor) return fail(kExitFailed, executor.error().message);

  Node node(config, args, std::move(*identity), *executor);
  if (auto started = node.start(); !started) {
    node.shutdown();
    return fail(kExitFailed, started.error().message);
  }
  // READY=1 comes from the node once it is in a pool (ServiceNotifier).
  node.wait_until_stop_requested();
  // Already sent when a signal or `p2pctl leave` began the departure; not
  // when a fatal error stops the node. systemd ignores a repeat.
  sd_notify(0, "STOPPING=1\nSTATUS=shutting down");
  node.shutdown();
  if (node.failed()) return fail(kExitFailed, "stopped after a fatal error (see the log above)");
  log::info(log::Category::node, "stopped");
  return kExitOk;
}

}  // namespace

int run_daemon(int argc, char** argv) {
  log::init_from_environment("p2pd");
  // A peer or p2pctl that hangs up must not kill us with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  net::route_grpc_logs_to_our_log();
  net::route_protobuf_logs_to_our_log();
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return run(args);
  } catch (const std::exception& e) {
    // Start-up and config may throw (STYLE.md); nothing else should reach here.
    return fail(kExitFailed, e.what());
  }
}

}  // namespace p2pd::node
