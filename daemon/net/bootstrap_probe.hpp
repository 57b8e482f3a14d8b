#pragma once
// Which --bootstrap peers to ping, and when (sans-IO: ticks in, decisions
// out). A peer is pinged until it answers; failures back off exponentially
// up to a minute, and only some of them are worth a warning, so a dead
// bootstrap address cannot flood the log (Bitcoin Core's rule).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/host_port.hpp"
#include "common/node_id.hpp"

namespace p2pd::net {

struct BootstrapPeer {
  HostPort addr;
  std::optional<NodeId> node_id;  // set once it answered
  std::uint32_t failures = 0;
  std::uint64_t next_attempt_tick = 0;
  bool in_flight = false;
};

class BootstrapProbe {
 public:
  // Retry after 1 s, 2 s, 4 s ... at most 64 s (at 20 ticks a second).
  static constexpr std::uint64_t kFirstRetryTicks = 20;
  static constexpr std::uint64_t kMaxRetryTicks = 64 * 20;

  BootstrapProbe(std::vector<HostPort> peers, NodeId self);

  // Peers to ping now; they are in flight until on_answer/on_failure.
  std::vector<HostPort> due(std::uint64_t tick);

  enum class Verdict { joined, is_self, unknown_peer };
  Verdict on_answer(const HostPort& addr, const NodeId& id);
  // True when this failure deserves a warning (the first, then every 10th).
  bool on_failure(const HostPort& addr, std::uint64_t tick);

  [[nodiscard]] const std::vector<BootstrapPeer>& peers() const { return m_peers; }

 private:
  BootstrapPeer* find(const HostPort& addr);
  std::vector<BootstrapPeer> m_peers;
  NodeId m_self;
};

}  // namespace p2pd::net
