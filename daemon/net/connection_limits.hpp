#pragma once
// How many connections the peer port keeps from one address, and in all.
// Anyone can connect to the peer port; without a cap one host could hold
// every descriptor the daemon has. gRPC closes the connections it serves
// without telling us, so a connection is tracked by its descriptor and the
// socket's inode, and counted while the descriptor still names that socket
// (a reused descriptor names another inode). Entries are checked only when
// an address, or the whole table, is at its cap, so an accept costs at most
// one pass over one address's connections; the whole table is checked at
// most once a second, so a flood at the total cap costs no more.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace p2pd::net {

// Peer connections open at once, from all addresses: well under
// p2pd.service's LimitNOFILE (65536), with room for our own calls out.
inline constexpr std::size_t kMaxPeerConnections = 4096;

struct ConnectionCaps {
  std::size_t per_address = 64;  // a NAT may hide a few dozen peers behind one address
  std::size_t total = kMaxPeerConnections;
};

class ConnectionLimits {
 public:
  struct Connection {
    int fd = -1;
    ino_t inode = 0;
  };
  // Whether the connection is still open (its descriptor still names that socket).
  using IsOpen = std::function<bool(const Connection&)>;
  enum class Verdict { admitted, too_many_from_address, too_many };

  ConnectionLimits(ConnectionCaps caps, IsOpen is_open);

  // Counts `connection` against `address` if both caps allow it.
  Verdict admit(const std::string& address, Connection connection, std::chrono::steady_clock::time_point now);
  // The connections tracked from `address` (some may have closed since).
  [[nodiscard]] std::vector<Connection> connections_of(const std::string& address) const;
  // Connections tracked (some may have closed since last checked).
  [[nodiscard]] std::size_t tracked() const { return m_total; }
  [[nodiscard]] const ConnectionCaps& caps() const { return m_caps; }

 private:
  void forget_closed(std::vector<Connection>& connections);
  void forget_all_closed();

  ConnectionCaps m_caps;
  IsOpen m_is_open;
  std::map<std::string, std::vector<Connection>> m_by_address;
  std::size_t m_total = 0;
  std::optional<std::chrono::steady_clock::time_point> m_last_full_check;
};

// The descriptor still names the socket with `inode`.
bool descriptor_names_socket(const ConnectionLimits::Connection& connection);

}  // namespace p2pd::net
