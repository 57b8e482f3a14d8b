#include <catch2/catch.hpp>

#include <cstdlib>

#include "cli/cli_args.hpp"
#include "cli/output.hpp"
#include "common/default_paths.hpp"

using namespace p2pd;
using namespace p2pd::cli;

namespace {
Result<CliArgs> parse(std::vector<std::string> args) {
  return parse_cli_args(args);
}
}  // namespace

TEST_CASE("global options go anywhere", "[unit][cli]") {
  ::unsetenv("P2PD_SOCKET");
  auto a = parse({"--json", "status", "--socket", "/tmp/s.sock", "--timeout=2.5"});
  REQUIRE(a);
  CHECK(a->command == "status");
  CHECK(a->global.json);
  CHECK(a->global.socket == "/tmp/s.sock");
  CHECK(a->global.timeout == std::chrono::milliseconds(2500));
  CHECK(a->arguments.empty());
}

TEST_CASE("P2PD_SOCKET is used when --socket is absent", "[unit][cli]") {
  ::setenv("P2PD_SOCKET", "/tmp/env.sock", 1);
  CHECK(parse({"status"})->global.socket == "/tmp/env.sock");
  CHECK(parse({"--socket", "/tmp/flag.sock", "status"})->global.socket == "/tmp/flag.sock");
  ::unsetenv("P2PD_SOCKET");
  CHECK(parse({"status"})->global.socket == default_control_socket());
}

TEST_CASE("usage errors", "[unit][cli]") {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{{},
                                                                                    {"--json"},
                                                                                    {"--socket"},
                                                                                    {"--timeout", "0", "status"},
                                                                                    {"--timeout", "-1", "status"},
                                                                                    {"--timeout", "soon", "status"},
                                                                                    {"--timeout", "nan", "status"},
                                                                                    {"--json=yes", "status"}}) {
    INFO((args.empty() ? std::string("(none)") : args[0]));
    CHECK_FALSE(parse(args));
  }
}

TEST_CASE("help forms", "[unit][cli]") {
  CHECK(parse({"--help"})->action == CliArgs::Action::help);
  CHECK(parse({"help"})->action == CliArgs::Action::help);
  auto topic = parse({"help", "status"});
  CHECK(topic->action == CliArgs::Action::help);
  CHECK(topic->command == "status");
  CHECK(parse({"status", "-h"})->command == "status");
  CHECK(parse({"-V"})->action == CliArgs::Action::version);
}

TEST_CASE("command options stay with the command", "[unit][cli]") {
  auto a = parse({"status", "--frobnicate", "x"});
  REQUIRE(a);
  CHECK(a->arguments == std::vector<std::string>{"--frobnicate", "x"});
}

TEST_CASE("durations read like a person would say them", "[unit][cli]") {
  CHECK(format_duration(0) == "0s");
  CHECK(format_duration(59) == "59s");
  CHECK(format_duration(62) == "1m 02s");
  CHECK(format_duration(3 * 3600 + 4 * 60) == "3h 04m");
  CHECK(format_duration(2 * 86400 + 3 * 3600) == "2d 03h");
}
