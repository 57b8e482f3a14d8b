#pragma once
#include "cli/cli_args.hpp"

namespace p2pd::cli {

int cmd_trace(const CliArgs& args);

}  // namespace p2pd::cli
