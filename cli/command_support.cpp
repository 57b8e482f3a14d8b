#include "cli/command_support.hpp"

#include <cstdio>

#include <fmt/format.h>

#include "common/one_line.hpp"

namespace p2pd::cli {

int fail(const Error& error) {
  fmt::print(stderr, "p2pctl: error: {}\n", one_line(error.message));
  return 1;
}

int usage_error(const std::string& message) {
  fmt::print(stderr, "p2pctl: error: {}\n", one_line(message));
  return 2;
}

void print_json(const Json& json) {
  fmt::print("{}\n", json.dump(2, ' ', false, Json::error_handler_t::replace));
}

std::optional<CommandArguments> parse_arguments(const CommandSyntax& syntax, const CliArgs& args) {
  auto parsed = parse_command_arguments(syntax, args.arguments);
  if (!parsed) {
    usage_error(parsed.error().message);
    return std::nullopt;
  }
  return std::move(*parsed);
}

}  // namespace p2pd::cli
