#pragma once
// chord::Message <-> proto (peer.proto, service Chord). Decoding is where a
// peer's bytes become values the core trusts: ids must be 20 bytes,
// addresses HOST:PORT and short, lists and values within the core's bounds.
// Anything else is refused with one line saying what was wrong.

#include <cstdint>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "daemon/chord/messages.hpp"
#include "proto/peer.pb.h"

namespace p2pd::net {

struct ChordInbound {
  chord::Peer from;
  chord::Message message;
  std::string executor;
  bool relayed = false;  // the sender is reached through a relay
};

proto::ChordRequest encode_request(const chord::Peer& self, const std::string& executor, const chord::Message& message);
Result<ChordInbound> decode_request(const proto::ChordRequest& request);

// `reply` is nullopt for one-way messages.
proto::ChordReply encode_reply(const NodeId& self, const std::string& executor,
                               const std::optional<chord::Message>& reply);
// The reply's request id is the one of the request it answers.
struct ChordAnswer {
  NodeId from;
  std::string executor;
  std::optional<chord::Message> message;
  bool relayed = false;
};
Result<ChordAnswer> decode_reply(const proto::ChordReply& reply, std::uint64_t request_id);

}  // namespace p2pd::net
