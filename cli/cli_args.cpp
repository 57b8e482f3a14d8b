#include "cli/cli_args.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "common/default_paths.hpp"

namespace p2pd::cli {
namespace {

// Splits "--name=value" into its parts; value empty when there is no '='.
std::pair<std::string, std::optional<std::string>> split_option(const std::string& arg) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos) return {arg, std::nullopt};
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

Result<std::chrono::milliseconds> parse_timeout(const std::string& text) {
  double seconds = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  constexpr double kMaxSeconds = 7 * 24 * 3600.0;
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(seconds) ||
      seconds <= 0 || seconds > kMaxSeconds) {
    return make_error(ErrorCode::invalid_argument, "--timeout: '{}' is not a number of seconds in (0, {}]", text,
                      kMaxSeconds);
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(seconds * 1000)));
}

}  // namespace

std::string general_help() {
  return R"(Usage: p2pctl [OPTIONS] COMMAND [ARGS]

Controls the local p2pd over its control socket.

Commands:
  status            this node: id, addresses, reachability, leader, executor
  peers             the pool's nodes as this node knows them
  ring              this node's Chord state: predecessor, successors, fingers
  lookup KEY        route KEY through the ring: its owner and the path there
  put KEY VALUE     store VALUE (or --file FILE) under KEY in the ring
  get KEY           print the value stored under KEY (or --out FILE)
  leader            the Raft view of this node: term, leader, role, voters
  netcheck          connectivity: observed addresses, reachability, NAT mapping
  punch PEER        try a direct connection to a peer reached through a relay
  submit gemm --a A.npy --b B.npy [--out C.npy] [--shards N] [--wait]
                    submit C = A x B (float32 .npy) to the pool
  jobs              the pool's jobs, oldest first
  job ID            one job: its state and its shards
  wait ID           block until the job ends (progress bar on a terminal)
  cancel ID         cancel a job
  result ID --out FILE
                    write a finished job's output to FILE (.npy)
  trace [--job ID] [--format text|shiviz|chrome|json] [--follow]
                    the pool's causal trace, merged from every reachable peer
  leave             hand this node's keys over and stop its p2pd
  help [COMMAND]    this help, or a command's arguments and --json fields

Options:
  --socket PATH     p2pd's control socket (env P2PD_SOCKET; default: your own
                    p2pd's, $XDG_RUNTIME_DIR/p2pd.sock, when it runs, else the
                    system service's, /run/p2pd/p2pd.sock)
  --json            machine output: one JSON document on stdout
  --timeout SECONDS give up on p2pd after this long (default 30)
  -h, --help        this help
  -V, --version     print the version

Exit status: 0 success, 1 the operation failed (p2pd unreachable, an error
from p2pd), 2 bad usage. Errors are one line on stderr: "p2pctl: error: ...".
)";
}

Result<CliArgs> parse_cli_args(const std::vector<std::string>& args) {
  CliArgs out;
  std::optional<std::string> socket;
  bool options_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || arg.empty() || arg[0] != '-' || arg == "-") {
      if (out.command.empty())
        out.command = arg;
      else
        out.arguments.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      out.arguments.push_back(arg);  // the command's options end here too
      continue;
    }
    // Named, not a structured binding: lambdas capture those only from
    // clang 16 (the fuzz preset builds with clang 14).
    const auto split = split_option(arg);
    const std::string& name = split.first;
    const std::optional<std::string>& inline_value = split.second;
    auto take_value = [&]() -> Result<std::string> {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size()) return make_error(ErrorCode::invalid_argument, "{} needs a value", name);
      return args[++i];
    };
    if (name == "-h" || name == "--help") {
      out.action = CliArgs::Action::help;
    } else if (name == "-V" || name == "--version") {
      out.action = CliArgs::Action::version;
    } else if (name == "--json") {
      if (inline_value) return make_error(ErrorCode::invalid_argument, "--json takes no value");
      out.global.json = true;
    } else if (name == "--socket") {
      auto value = take_value();
      if (!value) return value.error();
      if (value->empty()) return make_error(ErrorCode::invalid_argument, "--socket needs a path");
      socket = *value;
    } else if (name == "--timeout") {
      auto value = take_value();
      if (!value) return value.error();
      auto timeout = parse_timeout(*value);
      if (!timeout) return timeout.error();
      out.global.timeout = *timeout;
    } else {
      // Options of a command are kept for the command to judge.
      out.arguments.push_back(arg);
    }
  }
  if (out.command == "help") {
    out.action = CliArgs::Action::help;
    out.command.clear();
    for (const auto& topic : out.arguments) {
      if (topic == "--") continue;
      out.command = topic;
      break;
    }
    out.arguments.clear();
  }
  if (socket) {
    out.global.socket = *socket;
  } else if (const char* env = std::getenv("P2PD_SOCKET"); env != nullptr && env[0] != '\0') {
    out.global.socket = env;
  } else {
    out.global.socket = default_client_socket();
  }
  if (out.action == CliArgs::Action::run && out.command.empty()) {
    return make_error(ErrorCode::invalid_argument, "no command given (see p2pctl --help)");
  }
  return out;
}

const std::string* CommandArguments::option(std::string_view name) const {
  const auto it = options.find(name);
  return it == options.end() ? nullptr : &it->second;
}

Result<CommandArguments> parse_command_arguments(const CommandSyntax& syntax,
                                                 const std::vector<std::string>& arguments) {
  const std::string_view command = syntax.command;
  CommandArguments out;
  bool options_done = false;
  for (std::size_t i = 0; i < arguments.size(); ++i) {
    const std::string& arg = arguments[i];
    if (!options_done && arg == "--") {
      options_done = true;
      continue;
    }
    if (options_done || arg.empty() || arg[0] != '-' || arg == "-") {
      if (out.positionals.size() >= syntax.positionals.size()) {
        if (syntax.positionals.empty()) {
          return make_error(ErrorCode::invalid_argument, "{} takes no arguments, got '{}'", command, arg);
        }
        return make_error(ErrorCode::invalid_argument, "{}: unexpected argument '{}' (see p2pctl {} --help)", command,
                          arg, command);
      }
      out.positionals.push_back(arg);
      continue;
    }
    auto [name, inline_value] = split_option(arg);
    if (std::find(syntax.flag_options.begin(), syntax.flag_options.end(), name) != syntax.flag_options.end()) {
      if (inline_value) return make_error(ErrorCode::invalid_argument, "{}: {} takes no value", command, name);
      if (!out.options.emplace(name, std::string()).second) {
        return make_error(ErrorCode::invalid_argument, "{}: {} given more than once", command, name);
      }
      continue;
    }
    if (std::find(syntax.value_options.begin(), syntax.value_options.end(), name) == syntax.value_options.end()) {
      if (syntax.positionals.empty()) {
        return make_error(ErrorCode::invalid_argument, "{}: unknown option '{}' (see p2pctl {} --help)", command, name,
                          command);
      }
      return make_error(
          ErrorCode::invalid_argument,
          "{}: unknown option '{}' (see p2pctl {} --help; put -- before an argument that starts with '-')", command,
          name, command);
    }
    if (!inline_value) {
      if (i + 1 >= arguments.size())
        return make_error(ErrorCode::invalid_argument, "{}: {} needs a value", command, name);
      inline_value = arguments[++i];
    }
    if (inline_value->empty()) return make_error(ErrorCode::invalid_argument, "{}: {} needs a value", command, name);
    if (!out.options.emplace(name, *inline_value).second) {
      return make_error(ErrorCode::invalid_argument, "{}: {} given more than once", command, name);
    }
  }
  if (out.positionals.size() < syntax.required) {
    return make_error(ErrorCode::invalid_argument, "{}: missing {} (see p2pctl {} --help)", command,
                      syntax.positionals[out.positionals.size()], command);
  }
  return out;
}

}  // namespace p2pd::cli
