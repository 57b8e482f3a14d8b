#include "cli/p2pctl_main.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>

#include <fmt/format.h>
#include <grpc/support/log.h>

#include "cli/cli_args.hpp"
#include "cli/commands.hpp"
#include "common/one_line.hpp"
#include "common/version.hpp"

namespace p2pd::cli {
namespace {

// gRPC prints its own diagnostics to stderr; p2pctl owes scripts exactly one
// error line, built from the call's status. P2PCTL_GRPC_LOGS=1 keeps them.
void silence_grpc_logs() {
  if (const char* keep = std::getenv("P2PCTL_GRPC_LOGS"); keep != nullptr && keep[0] == '1') return;
  gpr_set_log_function([](gpr_log_func_args*) {});
}

}  // namespace

int run_p2pctl(int argc, char** argv) {
  silence_grpc_logs();
  try {
    auto args = parse_cli_args(std::vector<std::string>(argv + 1, argv + argc));
    if (!args) {
      fmt::print(stderr, "p2pctl: error: {}\n", one_line(args.error().message));
      return 2;
    }
    switch (args->action) {
      case CliArgs::Action::version: fmt::print("p2pctl {}\n", kVersion); return 0;
      case CliArgs::Action::help: {
        if (args->command.empty()) {
          fmt::print("{}", general_help());
          return 0;
        }
        const CommandSpec* spec = find_command(args->command);
        if (spec == nullptr) {
          fmt::print(stderr, "p2pctl: error: unknown command '{}' (see p2pctl --help)\n", one_line(args->command));
          return 2;
        }
        fmt::print("Usage: p2pctl [OPTIONS] {}\n\n{}", spec->usage, spec->help);
        return 0;
      }
      case CliArgs::Action::run: return run_command(*args);
    }
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "p2pctl: error: {}\n", one_line(e.what()));
    return 1;
  }
}

}  // namespace p2pd::cli
