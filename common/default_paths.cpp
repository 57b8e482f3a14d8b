#include "common/default_paths.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace p2pd {
namespace {

// The first directory systemd made for the service (RuntimeDirectory=,
// StateDirectory=, ConfigurationDirectory= set these; several are
// colon-separated), or empty outside a unit that asks for one.
std::filesystem::path systemd_directory(const char* variable) {
  const char* value = std::getenv(variable);
  if (value == nullptr || value[0] != '/') return {};
  std::string first(value);
  first = first.substr(0, first.find(':'));
  return first;
}

std::filesystem::path home_dir() {
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') return home;
  if (const passwd* pw = getpwuid(getuid()); pw != nullptr && pw->pw_dir != nullptr) return pw->pw_dir;
  return "/";
}

// The socket of a p2pd this user starts by hand (as root: the system one).
std::filesystem::path user_control_socket() {
  if (geteuid() == 0) return kSystemControlSocket;
  if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime != nullptr && runtime[0] == '/') {
    return std::filesystem::path(runtime) / "p2pd.sock";
  }
  return std::filesystem::path("/tmp") / ("p2pd-" + std::to_string(getuid())) / "p2pd.sock";
}

}  // namespace

std::filesystem::path default_control_socket() {
  if (auto runtime = systemd_directory("RUNTIME_DIRECTORY"); !runtime.empty()) return runtime / "p2pd.sock";
  return user_control_socket();
}

std::filesystem::path default_state_dir() {
  if (auto state = systemd_directory("STATE_DIRECTORY"); !state.empty()) return state;
  if (geteuid() == 0) return "/var/lib/p2pd";
  if (const char* state = std::getenv("XDG_STATE_HOME"); state != nullptr && state[0] == '/') {
    return std::filesystem::path(state) / "p2pd";
  }
  return home_dir() / ".local" / "state" / "p2pd";
}

std::filesystem::path default_config_file() {
  if (auto config = systemd_directory("CONFIGURATION_DIRECTORY"); !config.empty()) return config / "p2pd.conf";
  return "/etc/p2pd/p2pd.conf";
}

std::filesystem::path default_client_socket() {
  // Not $RUNTIME_DIRECTORY: p2pctl run from some other unit would look in
  // that unit's directory.
  return choose_client_socket(user_control_socket(), kSystemControlSocket);
}

std::filesystem::path choose_client_socket(const std::filesystem::path& own,
                                           const std::filesystem::path& system_socket) {
  std::error_code ec;
  if (own != system_socket && !std::filesystem::exists(own, ec) && std::filesystem::exists(system_socket, ec)) {
    return system_socket;
  }
  return own;
}

}  // namespace p2pd
