#pragma once
// Chord messages. Ring maintenance follows Zave, "Reasoning about identifier
// spaces: How to make Chord correct" (IEEE TSE 2017, §4); lookups are the
// iterative form of Stoica et al., "Chord" (SIGCOMM 2001, §4.3); the
// key-value messages carry the replicated store built on the ring. The core
// addresses peers by an opaque string the driver understands (HOST:PORT in
// p2pd, a node number in the simulator); ids are what the ring is ordered by.
//
// Every message is a request (it has a request_id and is answered by the
// value `receive` returns), a reply (matched to a request by request_id and
// sender address), or one-way (Notify, Leaving). The driver maps a request
// and its reply onto one RPC; the simulator onto two datagrams.

#include <cstdint>
#include <map>
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

// --- ring maintenance ------------------------------------------------------

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
// Graceful departure: the leaving node tells its neighbours, so they need not
// wait for timeouts (Stoica et al., ToN 2003, §IV-E.3).
struct Leaving {
  std::vector<Peer> successors;
};

// --- routing ---------------------------------------------------------------

// One step of an iterative lookup: "who succeeds `key`?" (§4.3).
struct FindSuccessor {
  std::uint64_t request_id = 0;
  NodeId key;
};
// done: `nodes` is the key's owner followed by its successors (the holders of
// its replicas). Not done: `nodes` are the answerer's nodes that most closely
// precede the key, closest first; the asker goes on with them.
struct FoundSuccessor {
  std::uint64_t request_id = 0;
  bool done = false;
  std::vector<Peer> nodes;
};

// --- key-value store -------------------------------------------------------

// Store a value. version 0: a client's write, the holder gives it the next
// version; otherwise a replica copy that replaces only an older version.
struct Put {
  std::uint64_t request_id = 0;
  NodeId key;
  std::string value;
  std::uint64_t version = 0;
};
struct PutReply {
  std::uint64_t request_id = 0;
  bool stored = false;
  std::uint64_t version = 0;
  std::string error;  // why not stored
};
struct Get {
  std::uint64_t request_id = 0;
  NodeId key;
};
struct GetReply {
  std::uint64_t request_id = 0;
  bool found = false;
  std::string value;
  std::uint64_t version = 0;
};
struct KeyVersion {
  NodeId key;
  std::uint64_t version = 0;
  friend bool operator==(const KeyVersion&, const KeyVersion&) = default;
};
// "These are the keys I hold": an owner to its replicas (from_owner), or a
// node to its predecessor, which may own some of them now (hand-over).
struct SyncOffer {
  std::uint64_t request_id = 0;
  bool from_owner = false;
  std::vector<KeyVersion> items;
};
// The keys the receiver of an offer lacks (or holds older); the offerer Puts them.
struct SyncWant {
  std::uint64_t request_id = 0;
  std::vector<NodeId> keys;
};

using Message = std::variant<GetNeighbors, Neighbors, Notify, Ping, Pong, Leaving, FindSuccessor, FoundSuccessor, Put,
                             PutReply, Get, GetReply, SyncOffer, SyncWant>;

// Requests expect the reply that `receive` returns; everything else does not.
inline bool is_request(const Message& m) {
  return std::holds_alternative<GetNeighbors>(m) || std::holds_alternative<Ping>(m) ||
         std::holds_alternative<FindSuccessor>(m) || std::holds_alternative<Put>(m) || std::holds_alternative<Get>(m) ||
         std::holds_alternative<SyncOffer>(m);
}

// The request id a message carries (0 for one-way messages), and stamping one.
inline std::uint64_t request_id_of(const Message& m) {
  return std::visit(
      [](const auto& v) -> std::uint64_t {
        if constexpr (requires { v.request_id; }) {
          return v.request_id;
        } else {
          return 0;
        }
      },
      m);
}
inline void set_request_id(Message& m, std::uint64_t id) {
  std::visit(
      [id](auto& v) {
        if constexpr (requires { v.request_id; }) v.request_id = id;
      },
      m);
}

// Removes the requests whose deadline has come, in request order (the map
// is ordered: timeouts are handled deterministically), and returns them.
template <class Pending>
std::vector<Pending> take_expired(std::map<std::uint64_t, Pending>& pending, std::uint64_t now) {
  std::vector<Pending> expired;
  for (auto it = pending.begin(); it != pending.end();) {
    if (it->second.deadline <= now) {
      expired.push_back(std::move(it->second));
      it = pending.erase(it);
    } else {
      ++it;
    }
  }
  return expired;
}

// What the core asks the driver to send.
struct Outgoing {
  std::string to_addr;
  Message message;
};

// Bounds on what a peer may send (validated, never asserted).
inline constexpr std::size_t kMaxAddrLength = 300;
inline constexpr std::size_t kMaxPeersAccepted = 64;
inline constexpr std::size_t kMaxValueBytes = 1 << 20;
inline constexpr std::size_t kMaxSyncItems = 4096;

}  // namespace p2pd::chord
