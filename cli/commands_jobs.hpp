#pragma once
// p2pctl's job commands: submit, jobs, job, wait, cancel, result
// (CONTRACT.md). Their specs (usage, help) are listed with the others in
// commands.cpp.

#include "cli/cli_args.hpp"

namespace p2pd::cli {

int cmd_submit(const CliArgs& args);
int cmd_jobs(const CliArgs& args);
int cmd_job(const CliArgs& args);
int cmd_wait(const CliArgs& args);
int cmd_cancel(const CliArgs& args);
int cmd_result(const CliArgs& args);

}  // namespace p2pd::cli
