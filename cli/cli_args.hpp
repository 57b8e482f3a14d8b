#pragma once
// p2pctl's command line: global options (anywhere), a command, its arguments.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
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
  std::string command;  // empty with Action::help for the general help
  // After the command, global options taken out. A "--" stays in: it ends
  // the command's options too (parse_command_arguments).
  std::vector<std::string> arguments;
};

// Usage errors (exit 2) are returned as Error.
Result<CliArgs> parse_cli_args(const std::vector<std::string>& args);

// What one command accepts after its name. The "{}" let a designated
// initializer leave members out without -Wmissing-field-initializers.
struct CommandSyntax {
  std::string_view command;                       // "put", for messages
  std::vector<std::string_view> positionals{};    // names, in order: {"KEY", "VALUE"}
  std::size_t required = 0;                       // how many of them must be given
  std::vector<std::string_view> value_options{};  // options taking a value: {"--file"}
  std::vector<std::string_view> flag_options{};   // options without one: {"--wait"}
};

struct CommandArguments {
  std::vector<std::string> positionals;
  std::map<std::string, std::string, std::less<>> options;  // given value options, by name

  // nullptr when the option was not given.
  [[nodiscard]] const std::string* option(std::string_view name) const;
  // Whether a flag option was given.
  [[nodiscard]] bool flag(std::string_view name) const { return options.contains(name); }
};

// Splits a command's arguments into positionals and its options ("--file F"
// or "--file=F", each at most once); "--" ends the options, so a KEY or
// VALUE may start with '-'. Usage errors (exit 2) are returned as Error.
Result<CommandArguments> parse_command_arguments(const CommandSyntax& syntax,
                                                 const std::vector<std::string>& arguments);

std::string general_help();

}  // namespace p2pd::cli
