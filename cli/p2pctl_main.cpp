#include "cli/p2pctl_main.hpp"

#include <cstdio>
#include <exception>

#include <fmt/format.h>

#include "cli/cli_args.hpp"
#include "cli/commands.hpp"
#include "common/version.hpp"

namespace p2pd::cli {

int run_p2pctl(int argc, char** argv) {
  try {
    auto args = parse_cli_args(std::vector<std::string>(argv + 1, argv + argc));
    if (!args) {
      fmt::print(stderr, "p2pctl: error: {}\n", args.error().message);
      return 2;
    }
    switch (args->action) {
      case CliArgs::Action::version:
        fmt::print("p2pctl {}\n", kVersion);
        return 0;
      case CliArgs::Action::help: {
        if (args->command.empty()) {
          fmt::print("{}", general_help());
          return 0;
        }
        const CommandSpec* spec = find_command(args->command);
        if (spec == nullptr) {
          fmt::print(stderr, "p2pctl: error: unknown command '{}' (see p2pctl --help)\n", args->command);
          return 2;
        }
        fmt::print("Usage: p2pctl [OPTIONS] {}\n\n{}", spec->usage, spec->help);
        return 0;
      }
      case CliArgs::Action::run:
        return run_command(*args);
    }
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "p2pctl: error: {}\n", e.what());
    return 1;
  }
}

}  // namespace p2pd::cli
