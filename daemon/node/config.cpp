#include "daemon/node/config.hpp"

#include <map>
#include <set>
#include <sstream>

#include <boost/program_options.hpp>

#include "common/default_paths.hpp"
#include "daemon/node/config_file.hpp"

namespace po = boost::program_options;

namespace p2pd::node {
namespace {

// Options that only make sense on the command line.
const std::set<std::string> kCommandLineOnly = {"help", "version", "config"};
const std::set<std::string> kRepeatable = {"bootstrap", "stun"};

struct OptionGroups {
  po::options_description general{"General"};
  po::options_description network{"Network (peers)"};
  po::options_description control{"Control (p2pctl)"};
  po::options_description storage{"Storage"};
  po::options_description execution{"Execution"};
  po::options_description raft{"Coordination (Raft)"};
  po::options_description all{"p2pd options"};
};

OptionGroups make_options() {
  OptionGroups g;
  // Program_options' chained calls read as a table; keep them so.
  // clang-format off
  g.general.add_options()
      ("help,h", "print this help and exit")
      ("version,V", "print the version and exit")
      ("config", po::value<std::string>()->value_name("FILE"),
       "INI-style config file with the same keys as the long options (default: /etc/p2pd/p2pd.conf if present)")
      ("log-level", po::value<std::string>()->value_name("LEVEL"),
       "trace|debug|info|warn|error (default: info); SIGHUP re-reads it")
      ("log-format", po::value<std::string>()->value_name("text|json"),
       "text lines, or one JSON object per line for log shippers (default: text); "
       "SIGHUP re-reads it");
  g.network.add_options()
      ("listen", po::value<std::string>()->value_name("HOST:PORT"),
       "peer RPC address (TCP); port 0 picks a free one (default: 0.0.0.0:7420)")
      ("advertise", po::value<std::string>()->value_name("HOST:PORT"),
       "address peers reach this node at (default: the --listen address; a wildcard "
       "listen address is announced as the primary interface's address)")
      ("bootstrap", po::value<std::vector<std::string>>()->value_name("HOST:PORT"),
       "a peer of the pool to join; repeatable. None: start a new pool")
      ("stun", po::value<std::vector<std::string>>()->value_name("HOST:PORT"),
       "a STUN server (RFC 8489) to learn the public address; repeatable (two "
       "classify the NAT's port mapping)")
      ("pool-secret-file", po::value<std::string>()->value_name("FILE"),
       "close the pool: only peers whose certificate proves this secret (at least 16 "
       "bytes; make one with: openssl rand -hex 32) are let in or called; others are "
       "refused with a log line. Give every member the same file (default: an open pool)")
      ("peer-call-rate", po::value<std::string>()->value_name("N"),
       "calls one peer may make a second, in bursts of twice that (its IP address: four "
       "times that); more are refused, and twenty seconds' worth of refused calls bans "
       "the address (default: 1000)")
      ("max-connections-per-ip", po::value<std::string>()->value_name("N"),
       "peer connections one IP address may hold open at once; more are closed "
       "as they come (default: 64; at most 4096 from all addresses)")
      ("relay-max-reservations", po::value<std::string>()->value_name("N"),
       "unreachable peers this node relays for at once, one TCP port each; "
       "0: relay for nobody (default: 16)")
      ("relay-max-circuits", po::value<std::string>()->value_name("N"),
       "connections relayed at once, all reservations together (default: 64)")
      ("relay-max-rate", po::value<std::string>()->value_name("MIB"),
       "MiB/s all relayed connections share, both directions counted; 0: no limit "
       "(default: 16)")
      ("port-mapping", po::value<std::string>()->value_name("auto|natpmp|upnp|off"),
       "ask the router to forward the listen port: auto tries NAT-PMP, then "
       "UPnP-IGD; only behind a NAT, without --advertise (default: auto)");
  g.control.add_options()
      ("control-socket", po::value<std::string>()->value_name("PATH"),
       "the local gRPC unix socket p2pctl uses (default: $RUNTIME_DIRECTORY/p2pd.sock "
       "under systemd, /run/p2pd/p2pd.sock as root, else $XDG_RUNTIME_DIR/p2pd.sock)");
  g.storage.add_options()
      ("state-dir", po::value<std::string>()->value_name("DIR"),
       "node identity, Raft log, blobs, traces (default: $STATE_DIRECTORY under systemd, "
       "/var/lib/p2pd as root, else ~/.local/state/p2pd)")
      ("store-capacity", po::value<std::string>()->value_name("MIB"),
       "disk space for job data (input and output chunks) under STATE_DIR/blobs; "
       "past it the least recently used chunks go (default: 10240)")
      ("trace-capacity", po::value<std::string>()->value_name("MIB"),
       "disk space for this node's causal trace under STATE_DIR/traces; "
       "past it the oldest events go; 0 turns tracing off (default: 64)");
  g.execution.add_options()
      ("executor", po::value<std::string>()->value_name("auto|cuda|cpu"),
       "where shards run; auto uses a GPU when one works (default: auto)")
      ("cpu-threads", po::value<std::string>()->value_name("N"),
       "threads a CPU shard and a result check may use; "
       "fewer leave cores to the machine's owner; 0: every core (default: 0)");
  g.raft.add_options()
      ("raft-heartbeat", po::value<std::string>()->value_name("MS"),
       "how often the leader tells followers it is alive (default: 100)")
      ("raft-election-timeout", po::value<std::string>()->value_name("MS"),
       "silence after which a voter campaigns, randomized up to twice this; "
       "at least 5 heartbeats (default: 1000)")
      ("raft-voters", po::value<std::string>()->value_name("N"),
       "voters the leader keeps among reachable peers; the others are learners (default: 5)")
      ("raft-voter-timeout", po::value<std::string>()->value_name("SECONDS"),
       "a voter silent this long is replaced by another peer (default: 30)")
      ("raft-snapshot-entries", po::value<std::string>()->value_name("N"),
       "snapshot the job table and drop the log before it every N applied entries "
       "(default: 4096)");
  // clang-format on
  g.all.add(g.general).add(g.network).add(g.control).add(g.storage).add(g.execution).add(g.raft);
  return g;
}

std::string help_text(const OptionGroups& g) {
  std::ostringstream out;
  out << "Usage: p2pd [OPTIONS]\n\n"
         "p2pd is the peer daemon of a volunteer GPU compute pool: it joins the pool\n"
         "(--bootstrap), serves peers on --listen and is driven by p2pctl over\n"
         "--control-socket. Command-line options override the config file, which\n"
         "overrides the defaults. SIGTERM/SIGINT leave the pool gracefully (this\n"
         "node's keys go to its successor) and exit 0; SIGHUP re-reads the config file.\n\n"
      << g.general << '\n'
      << g.network << '\n'
      << g.control << '\n'
      << g.storage << '\n'
      << g.execution << '\n'
      << g.raft;
  return out.str();
}

Result<std::uint32_t> parse_count(const std::string& value, std::uint32_t min, std::uint32_t max) {
  std::uint64_t n = 0;
  if (value.empty() || value.size() > 10 || value.find_first_not_of("0123456789") != std::string::npos) {
    return make_error(ErrorCode::invalid_argument, "'{}' is not a whole number", value);
  }
  n = std::stoull(value);
  if (n < min || n > max) return make_error(ErrorCode::invalid_argument, "{} is out of range [{}, {}]", n, min, max);
  return static_cast<std::uint32_t>(n);
}

// Applies one option's value to the config. `where` prefixes any error: the
// option as typed, or FILE:LINE.
Result<void> apply_value(NodeConfig& config, const std::string& key, const std::string& value,
                         const std::string& where) {
  auto fail = [&](const Error& e) { return Error{ErrorCode::invalid_argument, where + ": " + e.message}; };
  if (key == "listen") {
    auto hp = parse_host_port(value, /*allow_port_zero=*/true);
    if (!hp) return fail(hp.error());
    config.listen = *hp;
  } else if (key == "advertise") {
    auto hp = parse_host_port(value, false);
    if (!hp) return fail(hp.error());
    config.advertise = *hp;
  } else if (key == "bootstrap" || key == "stun") {
    auto hp = parse_host_port(value, false);
    if (!hp) return fail(hp.error());
    (key == "bootstrap" ? config.bootstrap : config.stun).push_back(*hp);
  } else if (key == "pool-secret-file") {
    if (value.empty()) return fail(make_error(ErrorCode::invalid_argument, "needs a path"));
    config.pool_secret_file = std::filesystem::path(value);
  } else if (key == "control-socket" || key == "state-dir") {
    if (value.empty()) return fail(make_error(ErrorCode::invalid_argument, "needs a path"));
    (key == "control-socket" ? config.control_socket : config.state_dir) = std::filesystem::path(value);
  } else if (key == "store-capacity") {
    auto n = parse_count(value, 16, 1u << 30);
    if (!n) return fail(n.error());
    config.store_capacity_mib = *n;
  } else if (key == "trace-capacity") {
    auto n = parse_count(value, 0, 1u << 20);
    if (!n) return fail(n.error());
    config.trace_capacity_mib = *n;
  } else if (key == "peer-call-rate") {
    auto n = parse_count(value, 10, 1'000'000);
    if (!n) return fail(n.error());
    config.peer_call_rate = *n;
  } else if (key == "max-connections-per-ip") {
    auto n = parse_count(value, 1, 4096);
    if (!n) return fail(n.error());
    config.max_connections_per_ip = *n;
  } else if (key == "cpu-threads") {
    auto n = parse_count(value, 0, 1024);
    if (!n) return fail(n.error());
    config.cpu_threads = *n;
  } else if (key == "executor") {
    if (value == "auto")
      config.executor = ExecutorChoice::automatic;
    else if (value == "cuda")
      config.executor = ExecutorChoice::cuda;
    else if (value == "cpu")
      config.executor = ExecutorChoice::cpu;
    else
      return fail(make_error(ErrorCode::invalid_argument, "'{}' is not one of auto, cuda, cpu", value));
  } else if (key == "port-mapping") {
    if (value == "auto")
      config.port_mapping = PortMappingChoice::automatic;
    else if (value == "natpmp")
      config.port_mapping = PortMappingChoice::natpmp;
    else if (value == "upnp")
      config.port_mapping = PortMappingChoice::upnp;
    else if (value == "off")
      config.port_mapping = PortMappingChoice::off;
    else
      return fail(make_error(ErrorCode::invalid_argument, "'{}' is not one of auto, natpmp, upnp, off", value));
  } else if (key == "log-format") {
    auto format = log::parse_format(value);
    if (!format) return fail(make_error(ErrorCode::invalid_argument, "'{}' is not one of text, json", value));
    config.log_format = *format;
  } else if (key == "log-level") {
    auto level = log::parse_level(value);
    if (!level) {
      return fail(make_error(ErrorCode::invalid_argument, "'{}' is not one of trace, debug, info, warn, error", value));
    }
    config.log_level = *level;
  } else if (key == "relay-max-reservations" || key == "relay-max-circuits" || key == "relay-max-rate") {
    auto n = key == "relay-max-rate" ? parse_count(value, 0, 100000) : parse_count(value, 0, 4096);
    if (!n) return fail(n.error());
    if (key == "relay-max-reservations") config.relay_max_reservations = *n;
    if (key == "relay-max-circuits") config.relay_max_circuits = *n;
    if (key == "relay-max-rate") config.relay_max_rate_mib = *n;
  } else if (key == "raft-heartbeat" || key == "raft-election-timeout" || key == "raft-voters" ||
             key == "raft-voter-timeout" || key == "raft-snapshot-entries") {
    const bool ms = key == "raft-heartbeat" || key == "raft-election-timeout";
    auto n = key == "raft-voters"             ? parse_count(value, 1, 15)
             : key == "raft-snapshot-entries" ? parse_count(value, 1, 100000000)
                                              : parse_count(value, ms ? 10 : 1, ms ? 60000 : 86400);
    if (!n) return fail(n.error());
    if (key == "raft-heartbeat") config.raft_heartbeat_ms = *n;
    if (key == "raft-election-timeout") config.raft_election_timeout_ms = *n;
    if (key == "raft-voters") config.raft_voters = *n;
    if (key == "raft-voter-timeout") config.raft_voter_timeout_s = *n;
    if (key == "raft-snapshot-entries") config.raft_snapshot_entries = *n;
  } else {
    return fail(make_error(ErrorCode::internal, "option '{}' has no handler", key));
  }
  return {};
}

}  // namespace

Result<ParsedCommandLine> parse_command_line(const std::vector<std::string>& args) {
  const OptionGroups groups = make_options();
  po::variables_map vm;
  try {
    // An empty positional description makes stray words an error instead of
    // silently ignored.
    const po::positional_options_description no_positionals;
    po::store(po::command_line_parser(args).options(groups.all).positional(no_positionals).run(), vm);
  } catch (const po::error& e) {
    return make_error(ErrorCode::invalid_argument, "{}", e.what());
  }

  ParsedCommandLine result;
  if (vm.count("help")) {
    result.action = ParsedCommandLine::Action::help;
    result.help_text = help_text(groups);
    return result;
  }
  if (vm.count("version")) {
    result.action = ParsedCommandLine::Action::version;
    return result;
  }

  NodeConfig& config = result.config;
  config.control_socket = default_control_socket();
  config.state_dir = default_state_dir();

  // Layer 2: the config file.
  std::optional<std::filesystem::path> file;
  if (vm.count("config")) {
    file = vm["config"].as<std::string>();
  } else if (std::error_code ec; std::filesystem::exists(default_config_file(), ec)) {
    file = default_config_file();
  }
  if (file) {
    const ConfigKeyRules rules{[&](const std::string& key) {
                                 // find_nothrow also matches short names ("-h"); file keys are long names.
                                 return !key.starts_with('-') && !kCommandLineOnly.contains(key) &&
                                        groups.all.find_nothrow(key, false) != nullptr;
                               },
                               [](const std::string& key) { return kRepeatable.contains(key); }};
    auto entries = read_config_file(*file, rules);
    if (!entries) return entries.error();
    for (const auto& entry : *entries) {
      auto applied = apply_value(config, entry.key, entry.value, fmt::format("{}:{}", file->string(), entry.line));
      if (!applied) return applied.error();
    }
    config.config_file = file;
  }

  // Layer 3: the command line. A repeatable option given here replaces the
  // file's list rather than adding to it.
  for (const auto& [key, value] : vm) {
    if (kCommandLineOnly.contains(key)) continue;
    if (kRepeatable.contains(key)) {
      (key == "bootstrap" ? config.bootstrap : config.stun).clear();
      for (const auto& item : value.as<std::vector<std::string>>()) {
        auto applied = apply_value(config, key, item, "--" + key);
        if (!applied) return applied.error();
      }
    } else {
      auto applied = apply_value(config, key, value.as<std::string>(), "--" + key);
      if (!applied) return applied.error();
    }
  }
  if (config.raft_election_timeout_ms < 5 * config.raft_heartbeat_ms) {
    return make_error(ErrorCode::invalid_argument,
                      "raft-election-timeout ({} ms) must be at least 5 times raft-heartbeat ({} ms), or followers "
                      "would campaign between heartbeats",
                      config.raft_election_timeout_ms, config.raft_heartbeat_ms);
  }
  return result;
}

ReloadPlan plan_reload(const NodeConfig& running, const NodeConfig& reread) {
  ReloadPlan plan{reread.log_level, reread.log_format, {}};
  if (running.listen != reread.listen) plan.need_restart.emplace_back("listen");
  if (running.advertise != reread.advertise) plan.need_restart.emplace_back("advertise");
  if (running.bootstrap != reread.bootstrap) plan.need_restart.emplace_back("bootstrap");
  if (running.stun != reread.stun) plan.need_restart.emplace_back("stun");
  if (running.relay_max_reservations != reread.relay_max_reservations) {
    plan.need_restart.emplace_back("relay-max-reservations");
  }
  if (running.relay_max_circuits != reread.relay_max_circuits) plan.need_restart.emplace_back("relay-max-circuits");
  if (running.port_mapping != reread.port_mapping) plan.need_restart.emplace_back("port-mapping");
  if (running.pool_secret_file != reread.pool_secret_file) plan.need_restart.emplace_back("pool-secret-file");
  if (running.peer_call_rate != reread.peer_call_rate) plan.need_restart.emplace_back("peer-call-rate");
  if (running.max_connections_per_ip != reread.max_connections_per_ip) {
    plan.need_restart.emplace_back("max-connections-per-ip");
  }
  if (running.relay_max_rate_mib != reread.relay_max_rate_mib) plan.need_restart.emplace_back("relay-max-rate");
  if (running.control_socket != reread.control_socket) plan.need_restart.emplace_back("control-socket");
  if (running.state_dir != reread.state_dir) plan.need_restart.emplace_back("state-dir");
  if (running.executor != reread.executor) plan.need_restart.emplace_back("executor");
  if (running.cpu_threads != reread.cpu_threads) plan.need_restart.emplace_back("cpu-threads");
  if (running.store_capacity_mib != reread.store_capacity_mib) plan.need_restart.emplace_back("store-capacity");
  if (running.trace_capacity_mib != reread.trace_capacity_mib) plan.need_restart.emplace_back("trace-capacity");
  if (running.raft_heartbeat_ms != reread.raft_heartbeat_ms) plan.need_restart.emplace_back("raft-heartbeat");
  if (running.raft_election_timeout_ms != reread.raft_election_timeout_ms) {
    plan.need_restart.emplace_back("raft-election-timeout");
  }
  if (running.raft_voters != reread.raft_voters) plan.need_restart.emplace_back("raft-voters");
  if (running.raft_voter_timeout_s != reread.raft_voter_timeout_s) plan.need_restart.emplace_back("raft-voter-timeout");
  if (running.raft_snapshot_entries != reread.raft_snapshot_entries) {
    plan.need_restart.emplace_back("raft-snapshot-entries");
  }
  return plan;
}

}  // namespace p2pd::node
