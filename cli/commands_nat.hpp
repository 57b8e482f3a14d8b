#pragma once
// p2pctl's connectivity command: what this node knows of how the pool
// reaches it. Its spec (usage, help) is listed with the others in commands.cpp.

#include "cli/cli_args.hpp"

namespace p2pd::cli {

int cmd_netcheck(const CliArgs& args);
int cmd_punch(const CliArgs& args);

}  // namespace p2pd::cli
