#include "cli/commands.hpp"

#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/control_client.hpp"
#include "cli/output.hpp"
#include "common/one_line.hpp"

namespace p2pd::cli {
namespace {

using Json = nlohmann::ordered_json;

Json status_json(const proto::StatusReply& s) {
  Json j;
  j["node_id"] = s.node_id();
  j["listen"] = s.listen();
  j["observed_addrs"] = Json::array();
  for (const auto& a : s.observed_addrs()) j["observed_addrs"].push_back(a);
  j["reachability"] = s.reachability();
  j["leader_id"] = s.has_leader_id() ? Json(s.leader_id()) : Json(nullptr);
  j["executor"] = s.executor();
  j["executor_device"] = s.executor_device().empty() ? Json(nullptr) : Json(s.executor_device());
  j["version"] = s.version();
  j["uptime_s"] = s.uptime_s();
  j["pid"] = s.pid();
  j["state_dir"] = s.state_dir();
  j["bootstrap"] = Json::array();
  for (const auto& b : s.bootstrap()) {
    j["bootstrap"].push_back(Json{{"addr", b.addr()},
                                  {"node_id", b.has_node_id() ? Json(b.node_id()) : Json(nullptr)},
                                  {"failures", b.failures()}});
  }
  return j;
}

void print_status_text(const proto::StatusReply& s) {
  TextTable table;
  table.row("node_id", s.node_id());
  table.row("listen", s.listen());
  table.row("observed_addrs", s.observed_addrs().empty() ? "none yet" : join(s.observed_addrs(), ", "));
  table.row("reachability", s.reachability());
  table.row("leader_id", s.has_leader_id() ? s.leader_id() : "none");
  table.row("executor", s.executor_device().empty() ? s.executor() : s.executor() + " (" + s.executor_device() + ")");
  table.row("version", s.version());
  table.row("uptime", format_duration(s.uptime_s()));
  table.row("pid", std::to_string(s.pid()));
  table.row("state_dir", s.state_dir());
  std::vector<std::string> bootstrap;
  for (const auto& b : s.bootstrap()) {
    if (b.has_node_id()) {
      bootstrap.push_back(b.addr() + " (node " + b.node_id().substr(0, 8) + ", answered)");
    } else if (b.failures() > 0) {
      bootstrap.push_back(b.addr() + " (unreachable, " + std::to_string(b.failures()) + " tries)");
    } else {
      bootstrap.push_back(b.addr() + " (not tried yet)");
    }
  }
  table.row("bootstrap", bootstrap.empty() ? "none (started a new pool)" : join(bootstrap, ", "));
  fmt::print("{}", table.render());
}

int fail(const Error& error) {
  fmt::print(stderr, "p2pctl: error: {}\n", one_line(error.message));
  return 1;
}

int usage_error(const std::string& message) {
  fmt::print(stderr, "p2pctl: error: {}\n", one_line(message));
  return 2;
}

int cmd_status(const CliArgs& args) {
  if (!args.arguments.empty())
    return usage_error(fmt::format("status takes no arguments, got '{}'", args.arguments[0]));
  ControlClient client(args.global);
  auto reply = client.status();
  if (!reply) return fail(reply.error());
  if (args.global.json) {
    fmt::print("{}\n", status_json(*reply).dump(2));
  } else {
    print_status_text(*reply);
  }
  return 0;
}

}  // namespace

const std::vector<CommandSpec>& command_specs() {
  static const std::vector<CommandSpec> specs = {
      {"status", "status", "this node: id, addresses, reachability, leader, executor",
       "Shows this node's id, peer address, observed addresses, reachability,\n"
       "the Raft leader it knows, its executor, version and uptime.\n"
       "--json fields: node_id, listen, observed_addrs, reachability, leader_id,\n"
       "executor, executor_device, version, uptime_s, pid, state_dir, and\n"
       "bootstrap: a list of {addr, node_id (null until the peer answered), failures}.\n",
       &cmd_status},
  };
  return specs;
}

const CommandSpec* find_command(const std::string& name) {
  for (const auto& spec : command_specs()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

int run_command(const CliArgs& args) {
  const CommandSpec* spec = find_command(args.command);
  if (spec == nullptr) return usage_error(fmt::format("unknown command '{}' (see p2pctl --help)", args.command));
  return spec->run(args);
}

}  // namespace p2pd::cli
