#pragma once
// Chord ring-maintenance messages (Zave, "Reasoning about identifier spaces:
// How to make Chord correct", IEEE TSE 2017, §4). The core addresses peers by
// an opaque string the driver understands (HOST:PORT in p2pd, a node number
// in the simulator); ids are what the ring is ordered by.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/node_id.hpp"

namespace p2pd::chord {

struct Peer {
  NodeId id;
  std::string addr;
  friend bool operator==(const Peer&, const Peer&) = default;
};

// "Tell me your predecessor and successor list": the query of stabilize and
// of join (§4.2, §4.4).
struct GetNeighbors {
  std::uint64_t request_id = 0;
};
struct Neighbors {
  std::uint64_t request_id = 0;
  std::optional<Peer> predecessor;
  std::vector<Peer> successors;
};
// "I believe I am your predecessor" (§4.3; rectify decides).
struct Notify {};
// Liveness probe of the predecessor (§4.3, rectify's "pred is dead").
struct Ping {
  std::uint64_t request_id = 0;
};
struct Pong {
  std::uint64_t request_id = 0;
};

using Message = std::variant<GetNeighbors, Neighbors, Notify, Ping, Pong>;

// What the core asks the driver to send.
struct Outgoing {
  std::string to_addr;
  Message message;
};

}  // namespace p2pd::chord
