#pragma once
// How many connections the peer port keeps from one address, and in all.
// Anyone can connect to the peer port; without a cap one host could hold
// every descriptor the daemon has. A connection counts from its admission
// until whoever carries it reports its end (forget): the TLS layer sees
// every accepted connection end, so the count is exact, and no descriptor
// another thread may close is ever looked at. Not thread-safe: the
// listener guards it.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace p2pd::net {

// Peer connections open at once, from all addresses: well under
// p2pd.service's LimitNOFILE (65536), with room for our own calls out.
inline constexpr std::size_t kMaxPeerConnections = 4096;

struct ConnectionCaps {
  std::size_t per_address = 64;  // a NAT may hide a few dozen peers behind one address
  std::size_t total = kMaxPeerConnections;
};

// Names one admitted connection; never reused within a process's
// lifetime, whichever ConnectionLimits admitted it (the TLS layer keys the
// connections it watches by it).
using ConnectionId = std::uint64_t;

class ConnectionLimits {
 public:
  enum class Verdict { admitted, too_many_from_address, too_many };
  struct Admission {
    Verdict verdict;
    ConnectionId id = 0;  // when admitted
  };

  explicit ConnectionLimits(ConnectionCaps caps);

  // Counts a new connection from `address` if both caps allow it.
  Admission admit(const std::string& address);
  // The connection `id` has ended; false if it was not counted (already
  // forgotten, or never admitted).
  bool forget(ConnectionId id);
  // The connections counted from `address`, oldest first.
  [[nodiscard]] std::vector<ConnectionId> connections_of(const std::string& address) const;
  [[nodiscard]] std::size_t tracked() const { return m_address_of.size(); }
  [[nodiscard]] const ConnectionCaps& caps() const { return m_caps; }

 private:
  ConnectionCaps m_caps;
  std::map<std::string, std::vector<ConnectionId>> m_by_address;  // never an empty vector
  std::unordered_map<ConnectionId, std::string> m_address_of;
};

}  // namespace p2pd::net
