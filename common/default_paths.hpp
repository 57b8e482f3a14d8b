#pragma once
// Defaults shared by p2pd and p2pctl (CONTRACT.md), so both agree on where
// the control socket is without being told.

#include <filesystem>

namespace p2pd {

// The system service's socket (p2pd.service: RuntimeDirectory=p2pd).
inline const std::filesystem::path kSystemControlSocket = "/run/p2pd/p2pd.sock";

// Under systemd, the unit's directories come first ($RUNTIME_DIRECTORY,
// $STATE_DIRECTORY, $CONFIGURATION_DIRECTORY), so p2pd.service needs no
// paths on its command line.
// $RUNTIME_DIRECTORY/p2pd.sock; else /run/p2pd/p2pd.sock as root, else
// $XDG_RUNTIME_DIR/p2pd.sock (falling back to /tmp/p2pd-UID/p2pd.sock when
// XDG_RUNTIME_DIR is unset).
std::filesystem::path default_control_socket();
// $STATE_DIRECTORY; else /var/lib/p2pd as root, else $XDG_STATE_HOME/p2pd
// (default ~/.local/state/p2pd).
std::filesystem::path default_state_dir();
// $CONFIGURATION_DIRECTORY/p2pd.conf, else /etc/p2pd/p2pd.conf.
std::filesystem::path default_config_file();
// p2pctl's: the user's own daemon's socket when it exists, else the system
// service's when that exists (a member of the p2pd group drives it without
// --socket), else the user's (so the error names it).
std::filesystem::path default_client_socket();
// That choice between the user's own socket and the system one.
std::filesystem::path choose_client_socket(const std::filesystem::path& own,
                                           const std::filesystem::path& system_socket);

}  // namespace p2pd
