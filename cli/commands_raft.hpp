#pragma once
// p2pctl's Raft command: this node's view of the coordinators' election.
// Its spec (usage, help) is listed with the others in commands.cpp.

#include "cli/cli_args.hpp"

namespace p2pd::cli {

int cmd_leader(const CliArgs& args);

}  // namespace p2pd::cli
