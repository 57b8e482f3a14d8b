#pragma once
// raft::Message <-> proto (peer.proto, service Raft). Decoding is where a
// peer's bytes become values the Raft core trusts: ids of 20 bytes, a
// HOST:PORT sender address, known entry kinds, bounded entry and voter
// counts, and a message meant for this node. Anything else is refused with
// one line saying what was wrong.

#include <cstddef>
#include <optional>

#include "common/host_port.hpp"
#include "common/node_id.hpp"
#include "common/result.hpp"
#include "daemon/raft/messages.hpp"
#include "proto/peer.pb.h"

namespace p2pd::net {

// Bounds on what one Raft message may carry (the gRPC message cap bounds the bytes).
inline constexpr std::size_t kMaxRaftEntriesPerMessage = 4096;
inline constexpr std::size_t kMaxRaftVoters = 4096;

struct RaftInbound {
  NodeId from;
  HostPort from_addr;
  std::optional<raft::Message> message;  // nullopt: a hello, only the address
  bool leaving = false;                  // a hello that says the sender leaves the pool
};

proto::RaftMessage encode_raft(const NodeId& self, const HostPort& self_addr, const NodeId& to,
                               const raft::Message& message);
proto::RaftMessage encode_raft_hello(const NodeId& self, const HostPort& self_addr, const NodeId& to,
                                     bool leaving = false);
Result<RaftInbound> decode_raft(const proto::RaftMessage& message, const NodeId& self);

}  // namespace p2pd::net
