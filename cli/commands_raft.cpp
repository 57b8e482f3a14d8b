#include "cli/commands_raft.hpp"

#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/command_support.hpp"
#include "cli/control_client.hpp"
#include "cli/output.hpp"

namespace p2pd::cli {
namespace {

Json leader_json(const proto::LeaderReply& r) {
  Json j;
  j["term"] = r.term();
  j["leader_id"] = r.has_leader_id() ? Json(r.leader_id()) : Json(nullptr);
  j["leader_addr"] = r.has_leader_addr() ? Json(r.leader_addr()) : Json(nullptr);
  j["role"] = r.role();
  j["voters"] = Json::array();
  for (const auto& v : r.voters()) j["voters"].push_back(v);
  j["target_voters"] = r.target_voters();
  j["commit_index"] = r.commit_index();
  j["last_index"] = r.last_index();
  j["applied_index"] = r.applied_index();
  j["snapshot_index"] = r.snapshot_index();
  j["followers"] = Json::array();
  for (const auto& f : r.followers()) {
    j["followers"].push_back(Json{{"node_id", f.node_id()},
                                  {"match_index", f.match_index()},
                                  {"silent_ms", f.silent_ms()},
                                  {"voter", f.voter()}});
  }
  j["workers"] = Json::array();
  for (const auto& w : r.workers()) {
    j["workers"].push_back(Json{{"node_id", w.node_id()},
                                {"executor", w.executor()},
                                {"gflops", w.gflops()},
                                {"memory_bytes", w.memory_bytes()},
                                {"slots", w.slots()},
                                {"running", w.running()},
                                {"silent_ms", w.silent_ms()},
                                {"banned_ms", w.banned_ms()}});
  }
  return j;
}

void print_leader_text(const proto::LeaderReply& r) {
  TextTable table;
  std::string leader = "none known";
  if (r.has_leader_id()) {
    leader = short_id(r.leader_id());
    if (r.has_leader_addr()) leader += fmt::format(" ({})", r.leader_addr());
  }
  table.row("leader", leader);
  table.row("term", std::to_string(r.term()));
  table.row("role", r.role());
  std::vector<std::string> voters;
  for (const auto& v : r.voters()) voters.push_back(short_id(v));
  table.row("voters", fmt::format("{} of {} wanted: {}", voters.size(), r.target_voters(),
                                  voters.empty() ? "none yet" : join(voters, ", ")));
  table.row("log", fmt::format("commit {}, last {}, applied {}, snapshot {}", r.commit_index(), r.last_index(),
                               r.applied_index(), r.snapshot_index()));
  fmt::print("{}", table.render());
  if (r.followers().empty()) return;
  ColumnTable followers({"FOLLOWER", "KIND", "MATCH", "SILENT"});
  for (const auto& f : r.followers()) {
    followers.row({short_id(f.node_id()), f.voter() ? "voter" : "learner", std::to_string(f.match_index()),
                   fmt::format("{:.1f}s", static_cast<double>(f.silent_ms()) / 1000.0)});
  }
  fmt::print("\n{}", followers.render());
  if (r.workers().empty()) return;
  ColumnTable workers({"WORKER", "EXECUTOR", "GFLOP/S", "RUNNING", "SILENT", "BANNED"});
  for (const auto& w : r.workers()) {
    workers.row({short_id(w.node_id()), w.executor(), fmt::format("{:.0f}", w.gflops()),
                 fmt::format("{}/{}", w.running(), w.slots()),
                 fmt::format("{:.1f}s", static_cast<double>(w.silent_ms()) / 1000.0),
                 w.banned_ms() == 0 ? "-" : fmt::format("{:.0f}s", static_cast<double>(w.banned_ms()) / 1000.0)});
  }
  fmt::print("\n{}", workers.render());
}

}  // namespace

int cmd_leader(const CliArgs& args) {
  if (!parse_arguments({.command = "leader"}, args)) return 2;
  return show(args, ControlClient(args.global).leader(), leader_json, print_leader_text);
}

}  // namespace p2pd::cli
