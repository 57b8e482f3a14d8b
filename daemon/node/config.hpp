#pragma once
// p2pd's options (CONTRACT.md) turned into a plain struct: the rest of the
// daemon never sees a variables_map (Bitcoin Core's rule).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/host_port.hpp"
#include "common/log.hpp"
#include "common/result.hpp"
#include "daemon/exec/executor_select.hpp"

namespace p2pd::node {

using exec::ExecutorChoice;

enum class PortMappingChoice { automatic, natpmp, upnp, off };

struct NodeConfig {
  std::optional<std::filesystem::path> config_file;  // the file that was read, if any
  HostPort listen{"0.0.0.0", 7420};
  std::optional<HostPort> advertise;
  std::vector<HostPort> bootstrap;
  std::vector<HostPort> stun;
  std::filesystem::path control_socket;
  std::filesystem::path state_dir;
  ExecutorChoice executor = ExecutorChoice::automatic;
  // Threads a CPU shard and a result check may use; 0: one per core.
  std::uint32_t cpu_threads = 0;
  // Disk for blobs (job inputs and outputs), in MiB.
  std::uint32_t store_capacity_mib = 10240;
  std::uint32_t trace_capacity_mib = 64;
  log::Level log_level = log::Level::info;
  log::Format log_format = log::Format::text;
  // Raft (etcd's defaults): heartbeat, and the election timeout, randomized
  // per term up to twice this.
  std::uint32_t raft_heartbeat_ms = 100;
  std::uint32_t raft_election_timeout_ms = 1000;
  // How many voters the leader keeps, and how long a voter may be silent
  // before another peer replaces it.
  std::uint32_t raft_voters = 5;
  std::uint32_t raft_voter_timeout_s = 30;
  // The job table is snapshotted, and the log before it dropped, after this
  // many applied entries (etcd's --snapshot-count).
  std::uint32_t raft_snapshot_entries = 4096;
  // A closed pool's secret (tls/pool_secret.hpp); empty: an open pool.
  std::filesystem::path pool_secret_file;
  // Peer connections one IP address may hold open (a NAT may hide a few
  // dozen peers behind one address).
  std::uint32_t max_connections_per_ip = 64;
  // Calls one peer may make a second, in bursts of twice as many (its
  // address: four times as many); more are refused.
  std::uint32_t peer_call_rate = 1000;
  // Relaying for unreachable peers: reservations (ports) held at once (0: no
  // relaying), circuits open at once, and the bandwidth all circuits share
  // (MiB/s, each direction counted; 0: unlimited).
  std::uint32_t relay_max_reservations = 16;
  std::uint32_t relay_max_circuits = 64;
  std::uint32_t relay_max_rate_mib = 16;
  // Asking the home router to forward the listen port (NAT-PMP, UPnP-IGD).
  PortMappingChoice port_mapping = PortMappingChoice::automatic;

  friend bool operator==(const NodeConfig&, const NodeConfig&) = default;
};

struct ParsedCommandLine {
  enum class Action { run, help, version };
  Action action = Action::run;
  NodeConfig config;
  std::string help_text;  // filled for Action::help
};

// Command line over config file over defaults. Every error is a usage error:
// one line, and p2pd exits 2. `args` excludes argv[0].
Result<ParsedCommandLine> parse_command_line(const std::vector<std::string>& args);

// Which options SIGHUP can apply at run time; the rest need a restart.
struct ReloadPlan {
  log::Level log_level;
  log::Format log_format;
  std::vector<std::string> need_restart;  // option names whose value changed
};
ReloadPlan plan_reload(const NodeConfig& running, const NodeConfig& reread);

}  // namespace p2pd::node
