#include "cli/commands.hpp"

#include <fmt/format.h>

#include "cli/command_support.hpp"
#include "cli/commands_chord.hpp"
#include "cli/commands_jobs.hpp"
#include "cli/commands_nat.hpp"
#include "cli/commands_raft.hpp"
#include "cli/commands_trace.hpp"
#include "cli/control_client.hpp"
#include "cli/output.hpp"

namespace p2pd::cli {
namespace {

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

int cmd_status(const CliArgs& args) {
  if (!parse_arguments({.command = "status"}, args)) return 2;
  return show(args, ControlClient(args.global).status(), status_json, print_status_text);
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
      {"peers", "peers", "the pool's nodes as this node knows them",
       "Lists the nodes this node knows: id, address, how it reaches them,\n"
       "their executor, when each last answered or called, and its Chord role\n"
       "for this node (predecessor, successor, finger).\n"
       "--json fields: peers, a list of {node_id, addr, connection (direct,\n"
       "punched, relayed or none), executor, last_seen_s (seconds, or null: never),\n"
       "roles (list)}.\n",
       &cmd_peers},
      {"ring", "ring", "this node's Chord state: predecessor, successors, fingers",
       "Shows this node's place in the Chord ring: itself, its predecessor, its\n"
       "successor list (nearest first) and its distinct fingers.\n"
       "--json fields: self {node_id, addr}, predecessor (same, or null),\n"
       "successors (list of {node_id, addr}, nearest first), fingers (list of\n"
       "{start, node_id, addr}, lowest start first), member (false while joining).\n",
       &cmd_ring},
      {"lookup", "lookup KEY", "route KEY through the ring: its owner and the path there",
       "Routes KEY through the ring from this node: shows the node that owns it,\n"
       "how many nodes were asked on the way and which, and the replicas after\n"
       "the owner. KEY of exactly 40 hex digits is the id itself; any other KEY\n"
       "is hashed with SHA-1. Put -- before a KEY that starts with '-'.\n"
       "--json fields: key (40 hex digits), owner {node_id, addr}, hops,\n"
       "path (list of node ids, in order), replicas (list of {node_id, addr}).\n",
       &cmd_lookup},
      {"put", "put KEY (VALUE | --file FILE)", "store VALUE (or --file FILE) under KEY in the ring",
       "Stores VALUE, or the contents of FILE, under KEY on its owner and the\n"
       "replicas after it; a second put of KEY replaces the value with a newer\n"
       "version. KEY as for lookup; put -- before a KEY or VALUE that starts\n"
       "with '-'. A value holds at most 1 MiB (1048576 bytes).\n"
       "\n"
       "Options:\n"
       "  --file FILE   read the value from FILE (a regular file) instead\n"
       "\n"
       "--json fields: key (40 hex digits), version, copies (holders that stored\n"
       "it), holders (list of {node_id, addr}).\n",
       &cmd_put},
      {"get", "get KEY [--out FILE]", "print the value stored under KEY (or --out FILE)",
       "Fetches the value stored under KEY (as for lookup) and writes its bytes,\n"
       "as they are, to stdout. A key nobody holds is an error (exit 1).\n"
       "\n"
       "Options:\n"
       "  --out FILE    write the value to FILE instead (replaced atomically)\n"
       "\n"
       "--json fields: key (40 hex digits), version, bytes (the value's size), and\n"
       "value (a string) when the value is UTF-8 text, else value_hex (lowercase\n"
       "hex); with --out, path instead of value.\n",
       &cmd_get},
      {"leader", "leader", "the Raft view of this node: term, leader, role, voters",
       "Shows this node's view of the coordinators' Raft group: the term, the\n"
       "leader it follows, its own role (leader, follower, candidate, or learner:\n"
       "a peer that follows the log without voting), the voters, and how far\n"
       "the log is committed and applied. On the leader, every follower with\n"
       "how much of the log it holds and how long it has been silent.\n"
       "--json fields: term, leader_id (hex or null), leader_addr (or null), role,\n"
       "voters (list of hex), target_voters, commit_index, last_index,\n"
       "applied_index, snapshot_index, followers (list of {node_id, match_index,\n"
       "silent_ms, voter}; empty except on the leader), workers (on the leader: the\n"
       "scheduler's workers, list of {node_id, executor, gflops, memory_bytes, slots,\n"
       "running, silent_ms, banned_ms}).\n",
       &cmd_leader},
      {"netcheck", "netcheck", "connectivity: observed addresses, reachability, NAT mapping, STUN",
       "Shows what this node knows of how the pool reaches it: the addresses\n"
       "peers and STUN servers see it at (adopted once two observers on\n"
       "different IPs agree), whether peers can dial it back (reachability:\n"
       "public, private or unknown, and what that rests on), how its NAT maps\n"
       "ports (endpoint-independent mapping allows hole punching; needs two\n"
       "--stun servers), the port mapping protocol in use, and each STUN\n"
       "server's last answer.\n"
       "--json fields: observed (list of {ip, observers, adopted}), observers,\n"
       "reachability, reachability_detail, reachability_checked_s (or null),\n"
       "nat_mapping (none, endpoint-independent, endpoint-dependent, unknown),\n"
       "stun (list of {server, mapped (or null), rtt_ms, error (or null)}),\n"
       "port_mapping (none, upnp, natpmp), port_mapping_state ({enabled, addr\n"
       "(or null), gateway (or null), lifetime_s, renew_in_s, renewals, error (or\n"
       "null)}), relay ({state, peer, addr, error}),\n"
       "relay_service (null when not relaying, else {reservations, circuits,\n"
       "bytes_relayed, circuits_refused, max_reservations, max_circuits,\n"
       "max_rate_mib}), punching ({attempts, succeeded, direct_calls, direct (list of peer\n"
       "addresses reached over a punched connection), relayed (list of peer\n"
       "addresses still reached through their relay)}).\n",
       &cmd_netcheck},
      {"punch", "punch PEER", "try a direct connection to a peer reached through a relay",
       "PEER is a node id or the HOST:PORT `p2pctl peers` shows. The node drops\n"
       "any direct connection it has to the peer and punches a new one through\n"
       "both NATs (TCP simultaneous open, timed by the relay's round trip, up to\n"
       "three attempts), then prints how it went. p2pd does this by itself for\n"
       "every relayed peer it talks to; the command is for checking a path.\n"
       "Exit 0 when the direct connection works, 1 when calls stay on the relay.\n"
       "--json fields: node_id, addr, result (punched or failed), rtt_ms,\n"
       "elapsed_ms, attempts, error (or null).\n",
       &cmd_punch},
      {"submit", "submit gemm --a A.npy --b B.npy [--out C.npy] [--shards N] [--wait]",
       "submit C = A x B (float32 .npy) to the pool",
       "Checks both inputs (float32, C order, .npy version 1 to 3, A's columns\n"
       "equal to B's rows), streams them to the local p2pd, which stores them in\n"
       "the ring as replicated chunks, and commits the job to the pool. Prints the\n"
       "job id. The pool cuts A into row-block shards, runs them on its workers\n"
       "and verifies every result (Freivalds' check) before it counts.\n"
       "\n"
       "Options:\n"
       "  --shards N    row blocks to cut A into, 1 to 4096 (default: one per node)\n"
       "  --wait        then wait for the job to end (progress on a terminal)\n"
       "  --out FILE    then wait, and write C to FILE (implies --wait)\n"
       "\n"
       "--json fields: job_id, shards; with --wait or --out, the fields of 'job',\n"
       "and with --out also path and bytes. Exit 1 when the job fails.\n",
       &cmd_submit},
      {"jobs", "jobs", "the pool's jobs, oldest first",
       "Lists the jobs in the pool's replicated job table, oldest first.\n"
       "--json fields: jobs (list of {job_id, kind, state, submitted_at (Unix\n"
       "seconds), shards_done, shards_total}).\n",
       &cmd_jobs},
      {"job", "job ID", "one job: its state and its shards",
       "Shows one job (ID or a unique prefix of at least 6 hex digits): its state\n"
       "(queued, running, done, failed, cancelled) and each shard's rows, state\n"
       "(pending, assigned, done), peer and attempts.\n"
       "--json fields: job_id, kind, state, submitted_at, submitter, a and b\n"
       "({rows, cols}), max_attempts, shards_done, shards (list of {index, state,\n"
       "peer, attempts, row_begin, row_end, last_error}), error (null unless\n"
       "failed).\n",
       &cmd_job},
      {"wait", "wait ID", "block until the job ends (progress bar on a terminal)",
       "Waits until the job is done, failed or cancelled, drawing a progress bar\n"
       "on stderr when it is a terminal. Exit 0 when the job is done, 1 when it\n"
       "failed or was cancelled.\n"
       "--json fields: as for job.\n",
       &cmd_wait},
      {"cancel", "cancel ID", "cancel a job",
       "Cancels a queued or running job; a finished job is left as it is.\n"
       "--json fields: job_id, state.\n",
       &cmd_cancel},
      {"result", "result ID --out FILE", "write a finished job's output to FILE (.npy)",
       "Streams the output of a done job into FILE as a float32 .npy matrix\n"
       "(replaced atomically).\n"
       "--json fields: path, bytes (the file's size).\n",
       &cmd_result},
      {"trace", "trace [--job ID] [--format text|shiviz|chrome|json] [--follow]",
       "the pool's causal trace, merged from every reachable peer",
       "Gathers the recorded events (sends, receives and protocol events, with\n"
       "their Lamport, vector and hybrid clocks) from this node and every peer it\n"
       "heard from lately, and prints them in causal (Lamport) order. --job keeps\n"
       "one job's events. Formats: text (one line per event), shiviz (a log for\n"
       "ShiViz's default parser), chrome (trace-event JSON for Perfetto UI, with\n"
       "an arrow from each send to its receive), json (as --json). --follow keeps\n"
       "printing new events (text, or one JSON object per line) until interrupted.\n"
       "Vector clocks are rebuilt from the trace (each host counts its events; a\n"
       "receive merges its send's clock); a job's events also show the clock they\n"
       "carried (job_vc). Peers that cannot be reached are named on stderr.\n"
       "--json fields: events: list of {host, lamport, vc, kind (send/recv/local),\n"
       "msg_id (sends and receives), what, seq, hlc {l, c}, wall_ms, job_id and\n"
       "job_vc (a job's events)}.\n",
       &cmd_trace},
      {"leave", "leave", "hand this node's keys over and stop its p2pd",
       "Makes the local p2pd leave the pool gracefully: it hands its keys to its\n"
       "successor, tells its neighbours, hands Raft leadership to another voter\n"
       "when it leads, and exits 0 (as on SIGTERM).\n"
       "--json fields: keys_handed_over, successor (its address, or null when\n"
       "this node was alone).\n",
       &cmd_leave},
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
