#pragma once
// The relay a reachable peer runs for unreachable ones (relay_wire.hpp has
// the protocol). Each reservation is a TCP port on this node that peers call
// to reach the reserving node; every caller is joined to a leg that node
// opens outward, so its router lets it through. Limits an operator sets
// (--relay-max-reservations, --relay-max-circuits, --relay-max-rate) bound
// what relaying may cost: ports, sockets, and uplink bandwidth shared by
// all circuits. Runs on its own thread, so relayed job data never delays
// the node's protocol ticks.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/host_port.hpp"
#include "common/node_id.hpp"
#include "common/result.hpp"
#include "daemon/relay/relay_wire.hpp"

namespace p2pd::relay {

struct RelayLimits {
  std::size_t max_reservations = 16;       // 0: this node relays for nobody
  std::size_t max_circuits = 64;           // callers joined (or waiting) at once, all reservations together
  std::uint64_t max_rate_bytes_per_s = 0;  // both directions of all circuits together; 0: unlimited
};

struct RelayAllocation {
  HostPort addr;  // where peers call the reserving node
  Secret secret;  // proves the control connection is the reserving node's
};

struct RelayServerStats {
  std::size_t reservations = 0;
  std::size_t circuits = 0;
  std::uint64_t bytes_relayed = 0;
  std::uint64_t circuits_refused = 0;
};

class RelayServer {
 public:
  // Allocations listen on `bind_host` (the peer listener's host).
  RelayServer(std::string bind_host, RelayLimits limits);
  ~RelayServer();
  RelayServer(const RelayServer&) = delete;
  RelayServer& operator=(const RelayServer&) = delete;

  // A reservation for `node`, asked from `requester_ip`, to be announced as
  // `public_host`:PORT. A node that reserves again from the same IP gets its
  // port back with a new secret (its old control connection is dropped);
  // from another IP it is refused. `done` runs once, on the relay's thread.
  void reserve(const NodeId& node, const std::string& requester_ip, const std::string& public_host,
               std::function<void(Result<RelayAllocation>)> done);

  [[nodiscard]] RelayServerStats stats() const;
  [[nodiscard]] const RelayLimits& limits() const { return m_limits; }

  // Closes every allocation and circuit and joins the thread. Idempotent.
  void shutdown();

 private:
  struct State;
  RelayLimits m_limits;
  std::unique_ptr<State> m_state;
  std::thread m_thread;
};

}  // namespace p2pd::relay
