#include "common/default_paths.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace p2pd {
namespace {

std::filesystem::path home_dir() {
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') return home;
  if (const passwd* pw = getpwuid(getuid()); pw != nullptr && pw->pw_dir != nullptr) return pw->pw_dir;
  return "/";
}

}  // namespace

std::filesystem::path default_control_socket() {
  if (geteuid() == 0) return "/run/p2pd/p2pd.sock";
  if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime != nullptr && runtime[0] == '/') {
    return std::filesystem::path(runtime) / "p2pd.sock";
  }
  return std::filesystem::path("/tmp") / ("p2pd-" + std::to_string(getuid())) / "p2pd.sock";
}

std::filesystem::path default_state_dir() {
  if (geteuid() == 0) return "/var/lib/p2pd";
  if (const char* state = std::getenv("XDG_STATE_HOME"); state != nullptr && state[0] == '/') {
    return std::filesystem::path(state) / "p2pd";
  }
  return home_dir() / ".local" / "state" / "p2pd";
}

std::filesystem::path default_config_file() {
  return "/etc/p2pd/p2pd.conf";
}

}  // namespace p2pd
