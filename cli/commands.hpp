#pragma once
// p2pctl's commands: one RPC each, then text for people or JSON for scripts.

#include <string>
#include <vector>

#include "cli/cli_args.hpp"
#include "common/result.hpp"

namespace p2pd::cli {

struct CommandSpec {
  std::string name;
  std::string usage;                          // "status"
  std::string summary;                        // one line
  std::string help;                           // the command's own --help text, after the usage line
  int (*run)(const CliArgs& args) = nullptr;  // exit code, as run_command's
};

const std::vector<CommandSpec>& command_specs();
const CommandSpec* find_command(const std::string& name);

// Exit code: 0 ok, 1 failed, 2 usage. Prints results on stdout and the one
// error line on stderr.
int run_command(const CliArgs& args);

}  // namespace p2pd::cli
