#pragma once
// What every p2pctl command shares: its error line, its exit codes, its JSON.

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/cli_args.hpp"
#include "common/result.hpp"

namespace p2pd::cli {

using Json = nlohmann::ordered_json;

// Prints "p2pctl: error: ..." on stderr; returns 1, a failed operation.
int fail(const Error& error);

// Prints "p2pctl: error: ..." on stderr; returns 2, bad usage.
int usage_error(const std::string& message);

// One JSON document on stdout. Text from peers is not trusted to be UTF-8:
// a bad sequence is printed as U+FFFD rather than failing the command.
void print_json(const Json& json);

// The command's own arguments; on bad usage prints the error line and
// returns nullopt (the command then exits 2).
std::optional<CommandArguments> parse_arguments(const CommandSyntax& syntax, const CliArgs& args);

// A command's end: the failed call's error line (exit 1), or the reply as
// JSON for scripts (--json) or as text for people (exit 0).
template <class Reply>
int show(const CliArgs& args, const Result<Reply>& reply, Json (*to_json)(const Reply&),
         void (*print_text)(const Reply&)) {
  if (!reply) return fail(reply.error());
  if (args.global.json) {
    print_json(to_json(*reply));
  } else {
    print_text(*reply);
  }
  return 0;
}

}  // namespace p2pd::cli
