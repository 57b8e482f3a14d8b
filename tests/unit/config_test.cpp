#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <optional>

#include <unistd.h>

#include "common/default_paths.hpp"
#include "daemon/node/config.hpp"
#include "daemon/node/config_file.hpp"
#include "tests/support/scoped_env.hpp"
#include "tests/support/temp_dir.hpp"

using namespace p2pd;
using namespace p2pd::node;
using p2pd::test::ScopedEnv;

namespace {

Result<ParsedCommandLine> parse(std::vector<std::string> args) {
  return parse_command_line(args);
}

std::filesystem::path write_config(const test::TempDir& dir, const std::string& text) {
  const auto path = dir.path() / "p2pd.conf";
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

}  // namespace

TEST_CASE("under systemd the unit's directories are the defaults", "[unit][config]") {
  ScopedEnv runtime("RUNTIME_DIRECTORY", "/run/p2pd:/run/other");
  ScopedEnv state("STATE_DIRECTORY", "/var/lib/p2pd");
  ScopedEnv config("CONFIGURATION_DIRECTORY", "/etc/p2pd");
  CHECK(default_control_socket() == "/run/p2pd/p2pd.sock");  // the first of several
  CHECK(default_state_dir() == "/var/lib/p2pd");
  CHECK(default_config_file() == "/etc/p2pd/p2pd.conf");
  ScopedEnv relative("STATE_DIRECTORY", "var/lib/p2pd");  // not absolute: ignored
  CHECK(default_state_dir() != "var/lib/p2pd");
}

TEST_CASE("p2pctl finds the system service's socket when the user runs no daemon", "[unit][config]") {
  test::TempDir dir;
  const auto system_socket = dir.path() / "system" / "p2pd.sock";
  const auto own = dir.path() / "user" / "p2pd.sock";
  std::filesystem::create_directories(system_socket.parent_path());
  std::filesystem::create_directories(own.parent_path());
  // Neither exists: the user's own, so an error names it.
  CHECK(choose_client_socket(own, system_socket) == own);
  std::ofstream(system_socket) << "";
  CHECK(choose_client_socket(own, system_socket) == system_socket);
  std::ofstream(own) << "";  // the user's own daemon runs: it wins
  CHECK(choose_client_socket(own, system_socket) == own);
  CHECK(choose_client_socket(system_socket, system_socket) == system_socket);  // root: the same one
}

TEST_CASE("defaults follow the contract", "[unit][config]") {
  // Outside systemd (a test runner inside a unit would have these set).
  ScopedEnv runtime("RUNTIME_DIRECTORY", nullptr);
  ScopedEnv state("STATE_DIRECTORY", nullptr);
  ScopedEnv config_dir("CONFIGURATION_DIRECTORY", nullptr);
  auto parsed = parse({"--config", "/dev/null"});
  REQUIRE(parsed);
  const NodeConfig& c = parsed->config;
  CHECK(c.listen.to_string() == "0.0.0.0:7420");
  CHECK_FALSE(c.advertise);
  CHECK(c.bootstrap.empty());
  CHECK(c.executor == ExecutorChoice::automatic);
  CHECK(c.log_level == log::Level::info);
  CHECK(c.log_format == log::Format::text);
  auto json_logs = parse({"--config", "/dev/null", "--log-format", "json"});
  REQUIRE(json_logs);
  CHECK(json_logs->config.log_format == log::Format::json);
  CHECK_FALSE(parse({"--config", "/dev/null", "--log-format", "xml"}));
  CHECK(c.control_socket == default_control_socket());
  CHECK(c.state_dir == default_state_dir());
  if (::geteuid() == 0) {
    CHECK(c.control_socket == "/run/p2pd/p2pd.sock");
    CHECK(c.state_dir == "/var/lib/p2pd");
  }
}

TEST_CASE("command line over config file over defaults", "[unit][config]") {
  test::TempDir dir;
  const auto file = write_config(dir,
                                 "# a comment\n"
                                 "listen = 127.0.0.1:9000\n"
                                 "executor=cpu   # trailing comment\n"
                                 "bootstrap = 10.0.0.1:7420\n"
                                 "bootstrap = 10.0.0.2:7420\n"
                                 "log-level = debug\n"
                                 "\n");
  auto from_file = parse({"--config", file.string()});
  REQUIRE(from_file);
  CHECK(from_file->config.listen.to_string() == "127.0.0.1:9000");
  CHECK(from_file->config.executor == ExecutorChoice::cpu);
  CHECK(from_file->config.bootstrap.size() == 2);
  CHECK(from_file->config.log_level == log::Level::debug);
  CHECK(from_file->config.config_file == file);

  auto overridden =
      parse({"--config", file.string(), "--listen", "127.0.0.1:0", "--bootstrap", "10.9.9.9:1", "--executor=auto"});
  REQUIRE(overridden);
  CHECK(overridden->config.listen.to_string() == "127.0.0.1:0");
  CHECK(overridden->config.executor == ExecutorChoice::automatic);
  REQUIRE(overridden->config.bootstrap.size() == 1);  // replaces, not adds to, the file's list
  CHECK(overridden->config.bootstrap[0].to_string() == "10.9.9.9:1");
  CHECK(overridden->config.log_level == log::Level::debug);  // untouched keys keep the file's value
}

TEST_CASE("bad command lines are one-line usage errors", "[unit][config]") {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--bogus"},
                                             {"--listen"},
                                             {"--listen", "nonsense"},
                                             {"--listen", "1.2.3.4:99999"},
                                             {"--executor", "gpu"},
                                             {"--log-level", "loud"},
                                             {"--bootstrap", "host:0"},
                                             {"positional"},
                                             {"--config", "/nonexistent/p2pd.conf"}}) {
    INFO(args[0]);
    auto parsed = parse(args);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().message.find('\n') == std::string::npos);
    CHECK_FALSE(parsed.error().message.empty());
  }
  CHECK(parse({"--listen", "nonsense"}).error().message.starts_with("--listen: "));
}

TEST_CASE("help and version short-circuit", "[unit][config]") {
  auto help = parse({"--help", "--bogus-is-not-reached-because-po-parses-first"});
  CHECK_FALSE(help);  // unknown options are still errors
  help = parse({"--help"});
  REQUIRE(help);
  CHECK(help->action == ParsedCommandLine::Action::help);
  for (const char* group : {"General", "Network", "Control", "Storage", "Execution", "--listen", "--state-dir",
                            "--executor", "--stun", "--control-socket", "--advertise", "--bootstrap", "--config"}) {
    INFO(group);
    CHECK(help->help_text.find(group) != std::string::npos);
  }
  CHECK(parse({"-V"})->action == ParsedCommandLine::Action::version);
}

TEST_CASE("malformed config files name the file and line", "[unit][config]") {
  test::TempDir dir;
  struct Case {
    std::string text;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {"listen = 127.0.0.1:1\nnot a setting\n", "p2pd.conf:2: expected 'key = value'"},
           {"[section]\n", "p2pd.conf:1: sections are not used"},
           {"colour = blue\n", "p2pd.conf:1: unknown option 'colour'"},
           {"help = 1\n", "p2pd.conf:1: unknown option 'help'"},
           {"config = /etc/other\n", "p2pd.conf:1: unknown option 'config'"},
           {"listen =\n", "p2pd.conf:1: 'listen' needs a value"},
           {"= 5\n", "p2pd.conf:1: missing key"},
           {"listen = 1.2.3.4:1\nlisten = 1.2.3.4:2\n", "p2pd.conf:2: 'listen' is set twice (first on line 1)"},
           {"\n\nexecutor = tpu\n", "p2pd.conf:3: 'tpu' is not one of auto, cuda, cpu"},
           {"listen = 1.2.3.4\n", "p2pd.conf:1: '1.2.3.4' is not HOST:PORT"},
           {std::string("listen = 1\0.2", 13) + "\n", "not a text file"},
       }) {
    INFO(c.text);
    const auto file = write_config(dir, c.text);
    auto parsed = parse({"--config", file.string()});
    REQUIRE_FALSE(parsed);
    CHECK_THAT(parsed.error().message, Catch::Contains(c.expected));
    CHECK(parsed.error().message.find('\n') == std::string::npos);
  }
}

TEST_CASE("oversized and unreadable config files are refused", "[unit][config]") {
  test::TempDir dir;
  const auto big = write_config(dir, std::string(kMaxConfigFileBytes + 10, '#'));
  CHECK_THAT(parse({"--config", big.string()}).error().message, Catch::Contains("larger than"));
  CHECK_THAT(parse({"--config", dir.path().string()}).error().message, Catch::Contains("is a directory"));
}

TEST_CASE("SIGHUP applies the log level and names what needs a restart", "[unit][config]") {
  NodeConfig running;
  NodeConfig reread = running;
  reread.log_level = log::Level::debug;
  reread.log_format = log::Format::json;
  reread.listen = HostPort{"127.0.0.1", 1};
  reread.executor = ExecutorChoice::cpu;
  const ReloadPlan plan = plan_reload(running, reread);
  CHECK(plan.log_level == log::Level::debug);
  CHECK(plan.log_format == log::Format::json);
  CHECK(plan.need_restart == std::vector<std::string>{"listen", "executor"});
  CHECK(plan_reload(running, running).need_restart.empty());
}

TEST_CASE("raft options: etcd's defaults and their bounds", "[unit][config]") {
  auto defaults = parse({"--config", "/dev/null"});
  REQUIRE(defaults);
  CHECK(defaults->config.raft_heartbeat_ms == 100);
  CHECK(defaults->config.raft_election_timeout_ms == 1000);
  CHECK(defaults->config.raft_voters == 5);
  CHECK(defaults->config.raft_voter_timeout_s == 30);
  CHECK(defaults->config.raft_snapshot_entries == 4096);
  auto set = parse({"--config", "/dev/null", "--raft-heartbeat", "50", "--raft-election-timeout", "500",
                    "--raft-voters", "3", "--raft-voter-timeout", "10"});
  REQUIRE(set);
  CHECK(set->config.raft_heartbeat_ms == 50);
  CHECK(set->config.raft_election_timeout_ms == 500);
  CHECK(set->config.raft_voters == 3);
  CHECK(set->config.raft_voter_timeout_s == 10);
  for (const auto& [args, says] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--raft-voters", "0"}, "out of range"},
           {{"--raft-voters", "three"}, "not a whole number"},
           {{"--raft-heartbeat", "-5"}, "not a whole number"},
           {{"--raft-election-timeout", "300"}, "at least 5 times"},
       }) {
    std::vector<std::string> argv{"--config", "/dev/null"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto bad = parse(argv);
    REQUIRE_FALSE(bad);
    CHECK_THAT(bad.error().message, Catch::Contains(says));
  }
}

TEST_CASE("store capacity: a default, bounds, and a restart to change", "[unit][config]") {
  auto defaults = parse({"--config", "/dev/null"});
  REQUIRE(defaults);
  CHECK(defaults->config.store_capacity_mib == 10240);
  auto set = parse({"--config", "/dev/null", "--store-capacity", "512"});
  REQUIRE(set);
  CHECK(set->config.store_capacity_mib == 512);
  auto small = parse({"--config", "/dev/null", "--store-capacity", "1"});
  REQUIRE_FALSE(small);
  CHECK_THAT(small.error().message, Catch::Contains("out of range"));
  CHECK(plan_reload(defaults->config, set->config).need_restart == std::vector<std::string>{"store-capacity"});
}

TEST_CASE("trace capacity: a default, bounds, and a restart to change", "[unit][config]") {
  auto defaults = parse({"--config", "/dev/null"});
  REQUIRE(defaults);
  CHECK(defaults->config.trace_capacity_mib == 64);
  auto set = parse({"--config", "/dev/null", "--trace-capacity", "8"});
  REQUIRE(set);
  CHECK(set->config.trace_capacity_mib == 8);
  auto off = parse({"--config", "/dev/null", "--trace-capacity", "0"});  // tracing off
  REQUIRE(off);
  CHECK(off->config.trace_capacity_mib == 0);
  CHECK_FALSE(parse({"--config", "/dev/null", "--trace-capacity", "-1"}));
  CHECK(plan_reload(defaults->config, set->config).need_restart == std::vector<std::string>{"trace-capacity"});
  CHECK(defaults->config.cpu_threads == 0);  // every core
  auto two = parse({"--config", "/dev/null", "--cpu-threads", "2"});
  REQUIRE(two);
  CHECK(two->config.cpu_threads == 2);
  CHECK_FALSE(parse({"--config", "/dev/null", "--cpu-threads", "-1"}));
  CHECK_FALSE(parse({"--config", "/dev/null", "--cpu-threads", "many"}));
  CHECK(plan_reload(defaults->config, two->config).need_restart == std::vector<std::string>{"cpu-threads"});
}
