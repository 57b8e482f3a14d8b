#pragma once
// p2pctl's command line: global options (anywhere), a command, its arguments.

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace p2pd::cli {

struct GlobalOptions {
  std::filesystem::path socket;               // --socket, else $P2PD_SOCKET, else the default
  bool json = false;                          // --json
  std::chrono::milliseconds timeout{30'000};  // --timeout SECONDS
};

struct CliArgs {
  enum class Action { run, help, version };
  Action action = Action::run;
  GlobalOptions global;
  std::string command;                 // empty with Action::help for the general help
  std::vector<std::string> arguments;  // after the command
};

// Usage errors (exit 2) are returned as Error.
Result<CliArgs> parse_cli_args(const std::vector<std::string>& args);

std::string general_help();

}  // namespace p2pd::cli
