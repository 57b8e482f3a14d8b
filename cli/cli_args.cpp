#include "cli/cli_args.hpp"

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
  help [COMMAND]    this help

Options:
  --socket PATH     p2pd's control socket (env P2PD_SOCKET; default
                    /run/p2pd/p2pd.sock as root, else $XDG_RUNTIME_DIR/p2pd.sock)
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
      continue;
    }
    auto [name, inline_value] = split_option(arg);
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
    out.command = out.arguments.empty() ? "" : out.arguments.front();
    out.arguments.clear();
  }
  if (socket) {
    out.global.socket = *socket;
  } else if (const char* env = std::getenv("P2PD_SOCKET"); env != nullptr && env[0] != '\0') {
    out.global.socket = env;
  } else {
    out.global.socket = default_control_socket();
  }
  if (out.action == CliArgs::Action::run && out.command.empty()) {
    return make_error(ErrorCode::invalid_argument, "no command given (see p2pctl --help)");
  }
  return out;
}

}  // namespace p2pd::cli
