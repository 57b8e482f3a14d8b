#pragma once
// Defaults shared by p2pd and p2pctl (CONTRACT.md), so both agree on where
// the control socket is without being told.

#include <filesystem>

namespace p2pd {

// /run/p2pd/p2pd.sock as root, else $XDG_RUNTIME_DIR/p2pd.sock
// (falling back to /tmp/p2pd-UID/p2pd.sock when XDG_RUNTIME_DIR is unset).
std::filesystem::path default_control_socket();
// /var/lib/p2pd as root, else $XDG_STATE_HOME/p2pd (default ~/.local/state/p2pd).
std::filesystem::path default_state_dir();
// /etc/p2pd/p2pd.conf
std::filesystem::path default_config_file();

}  // namespace p2pd
