#include <catch2/catch.hpp>

#include <cstdlib>

#include "cli/cli_args.hpp"
#include "cli/commands.hpp"
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

TEST_CASE("a command gets its positionals and value options", "[unit][cli]") {
  const CommandSyntax put{
      .command = "put", .positionals = {"KEY", "VALUE"}, .required = 1, .value_options = {"--file"}};
  auto a = parse_command_arguments(put, {"k", "v"});
  REQUIRE(a);
  CHECK(a->positionals == std::vector<std::string>{"k", "v"});
  CHECK(a->option("--file") == nullptr);

  auto f = parse_command_arguments(put, {"--file", "data.bin", "k"});
  REQUIRE(f);
  CHECK(f->positionals == std::vector<std::string>{"k"});
  REQUIRE(f->option("--file") != nullptr);
  CHECK(*f->option("--file") == "data.bin");

  auto inline_value = parse_command_arguments(put, {"k", "--file=x=y"});
  REQUIRE(inline_value);
  CHECK(*inline_value->option("--file") == "x=y");

  // Empty strings and "-" are positionals like any other.
  auto odd = parse_command_arguments(put, {"", "-"});
  REQUIRE(odd);
  CHECK(odd->positionals == std::vector<std::string>{"", "-"});
}

TEST_CASE("a double dash lets a KEY or VALUE start with a dash", "[unit][cli]") {
  const CommandSyntax put{
      .command = "put", .positionals = {"KEY", "VALUE"}, .required = 1, .value_options = {"--file"}};
  CHECK_FALSE(parse_command_arguments(put, {"-k", "v"}));
  auto a = parse_command_arguments(put, {"--", "-k", "--file"});
  REQUIRE(a);
  CHECK(a->positionals == std::vector<std::string>{"-k", "--file"});
  CHECK(a->option("--file") == nullptr);

  // The global parser passes the double dash on with what follows it.
  ::unsetenv("P2PD_SOCKET");
  auto cli = parse({"put", "--json", "--", "-k", "--json"});
  REQUIRE(cli);
  CHECK(cli->global.json);
  CHECK(cli->arguments == std::vector<std::string>{"--", "-k", "--json"});
  auto b = parse_command_arguments(put, cli->arguments);
  REQUIRE(b);
  CHECK(b->positionals == std::vector<std::string>{"-k", "--json"});

  // A bare double dash after a command without arguments is harmless.
  CHECK(parse_command_arguments({.command = "status"}, parse({"status", "--"})->arguments));
  CHECK(parse({"help", "--", "put"})->command == "put");
}

TEST_CASE("command usage errors", "[unit][cli]") {
  const CommandSyntax put{
      .command = "put", .positionals = {"KEY", "VALUE"}, .required = 1, .value_options = {"--file"}};
  const CommandSyntax get{.command = "get", .positionals = {"KEY"}, .required = 1, .value_options = {"--out"}};
  const CommandSyntax ring{.command = "ring"};
  struct Case {
    const CommandSyntax* syntax;
    std::vector<std::string> arguments;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {&put, {}, "missing KEY"},
      {&get, {}, "missing KEY"},
      {&get, {"a", "b"}, "unexpected argument 'b'"},
      {&put, {"a", "b", "c"}, "unexpected argument 'c'"},
      {&put, {"a", "--file"}, "--file needs a value"},
      {&put, {"a", "--file="}, "--file needs a value"},
      {&put, {"a", "--file", "x", "--file", "y"}, "--file given more than once"},
      {&get, {"a", "--file", "x"}, "unknown option '--file'"},
      {&get, {"a", "-o", "x"}, "unknown option '-o'"},
      {&ring, {"x"}, "ring takes no arguments, got 'x'"},
      {&ring, {"--verbose"}, "unknown option '--verbose'"},
  };
  for (const auto& c : cases) {
    INFO(c.syntax->command << " " << join(c.arguments, " "));
    auto parsed = parse_command_arguments(*c.syntax, c.arguments);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code == ErrorCode::invalid_argument);
    CHECK_THAT(parsed.error().message, Catch::Contains(c.message_part));
  }
}

TEST_CASE("general help names every command", "[unit][cli]") {
  const std::string help = general_help();
  for (const auto& spec : command_specs()) {
    INFO(spec.name);
    CHECK(help.find("\n  " + spec.name) != std::string::npos);
    CHECK(spec.run != nullptr);
    CHECK(spec.usage.starts_with(spec.name));
    CHECK(!spec.help.empty());
    CHECK(spec.help.back() == '\n');
  }
  CHECK(find_command("lookup") != nullptr);
  CHECK(find_command("nope") == nullptr);
}

TEST_CASE("column tables line up and end without padding", "[unit][cli]") {
  ColumnTable table({"NODE", "ADDR", "ROLES"});
  table.row({"0123456789ab", "127.0.0.1:7420", "successor"});
  table.row({"ab", "h:1"});
  CHECK(table.render() ==
        "NODE          ADDR            ROLES\n"
        "0123456789ab  127.0.0.1:7420  successor\n"
        "ab            h:1\n");
  CHECK(short_id("0123456789abcdef0123456789abcdef01234567") == "0123456789ab");
  CHECK(short_id("abc") == "abc");
}

TEST_CASE("UTF-8 is checked strictly", "[unit][cli]") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain ascii\n"));
  CHECK(is_valid_utf8("gr\xc3\xbc\xc3\x9f"));      // U+00FC U+00DF
  CHECK(is_valid_utf8("\xe2\x82\xac"));            // U+20AC
  CHECK(is_valid_utf8("\xf0\x9f\x98\x80"));        // U+1F600
  CHECK(is_valid_utf8(std::string("a\0b", 3)));    // NUL is valid UTF-8
  CHECK_FALSE(is_valid_utf8("\x80"));              // lone continuation byte
  CHECK_FALSE(is_valid_utf8("\xc3"));              // truncated
  CHECK_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  CHECK_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xff"));              // never valid
  CHECK_FALSE(
      is_valid_utf8("\xe2\x82"
                    "a"));  // bad continuation
}

TEST_CASE("flag options take no value and may be given once", "[unit][cli]") {
  const CommandSyntax syntax{.command = "submit",
                             .positionals = {"KIND"},
                             .required = 1,
                             .value_options = {"--a"},
                             .flag_options = {"--wait"}};
  auto parsed = parse_command_arguments(syntax, {"gemm", "--wait", "--a", "x.npy"});
  REQUIRE(parsed);
  CHECK(parsed->flag("--wait"));
  CHECK(*parsed->option("--a") == "x.npy");
  auto absent = parse_command_arguments(syntax, {"gemm"});
  REQUIRE(absent);
  CHECK_FALSE(absent->flag("--wait"));
  CHECK_FALSE(parse_command_arguments(syntax, {"gemm", "--wait=yes"}));
  CHECK_FALSE(parse_command_arguments(syntax, {"gemm", "--wait", "--wait"}));
}
