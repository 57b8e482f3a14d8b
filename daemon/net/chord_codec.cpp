#include "daemon/net/chord_codec.hpp"

#include <type_traits>

#include "common/host_port.hpp"

namespace p2pd::net {
namespace {

constexpr std::size_t kMaxExecutorLength = 16;

std::string bytes_of(const NodeId& id) {
  return std::string(id.bytes().begin(), id.bytes().end());
}

Result<NodeId> id_from(const std::string& bytes, const char* what) {
  auto id = NodeId::from_bytes(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  if (!id) return make_error(ErrorCode::corrupt, "{} is {} bytes, not {}", what, bytes.size(), NodeId::kBytes);
  return *id;
}

void put_peer(proto::ChordPeer* out, const chord::Peer& peer) {
  out->set_node_id(bytes_of(peer.id));
  out->set_addr(peer.addr);
}

Result<chord::Peer> peer_from(const proto::ChordPeer& in) {
  auto id = id_from(in.node_id(), "a peer's node id");
  if (!id) return id.error();
  if (in.addr().size() > chord::kMaxAddrLength || !parse_host_port(in.addr(), false)) {
    return make_error(ErrorCode::corrupt, "a peer's address is not HOST:PORT");
  }
  return chord::Peer{*id, in.addr()};
}

Result<std::vector<chord::Peer>> peers_from(const google::protobuf::RepeatedPtrField<proto::ChordPeer>& in) {
  if (static_cast<std::size_t>(in.size()) > chord::kMaxPeersAccepted) {
    return make_error(ErrorCode::corrupt, "{} peers listed, at most {} accepted", in.size(), chord::kMaxPeersAccepted);
  }
  std::vector<chord::Peer> out;
  for (const auto& p : in) {
    auto peer = peer_from(p);
    if (!peer) return peer.error();
    out.push_back(std::move(*peer));
  }
  return out;
}

void put_peers(google::protobuf::RepeatedPtrField<proto::ChordPeer>* out, const std::vector<chord::Peer>& peers) {
  for (const auto& p : peers) put_peer(out->Add(), p);
}

}  // namespace

proto::ChordRequest encode_request(const chord::Peer& self, const std::string& executor,
                                   const chord::Message& message) {
  proto::ChordRequest out;
  put_peer(out.mutable_from(), self);
  out.set_executor(executor);
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (requires { m.request_id; }) out.set_request_id(m.request_id);
        if constexpr (std::is_same_v<T, chord::GetNeighbors>) out.mutable_get_neighbors();
        if constexpr (std::is_same_v<T, chord::Notify>) out.mutable_notify();
        if constexpr (std::is_same_v<T, chord::Ping>) out.mutable_ping();
        if constexpr (std::is_same_v<T, chord::Leaving>)
          put_peers(out.mutable_leaving()->mutable_peers(), m.successors);
        if constexpr (std::is_same_v<T, chord::FindSuccessor>) out.set_find_successor(bytes_of(m.key));
        if constexpr (std::is_same_v<T, chord::Put>) {
          auto* put = out.mutable_put();
          put->set_key(bytes_of(m.key));
          put->set_value(m.value);
          put->set_version(m.version);
        }
        if constexpr (std::is_same_v<T, chord::Get>) out.set_get(bytes_of(m.key));
        if constexpr (std::is_same_v<T, chord::SyncOffer>) {
          auto* offer = out.mutable_sync_offer();
          offer->set_from_owner(m.from_owner);
          for (const auto& item : m.items) {
            auto* v = offer->add_items();
            v->set_key(bytes_of(item.key));
            v->set_version(item.version);
          }
        }
      },
      message);
  return out;
}

Result<ChordInbound> decode_request(const proto::ChordRequest& request) {
  if (!request.has_from()) return make_error(ErrorCode::corrupt, "request without a sender");
  auto from = peer_from(request.from());
  if (!from) return from.error();
  if (request.executor().size() > kMaxExecutorLength) return make_error(ErrorCode::corrupt, "executor name too long");
  const std::uint64_t rid = request.request_id();
  ChordInbound in{std::move(*from), chord::Notify{}, request.executor(), request.relayed()};
  switch (request.body_case()) {
    case proto::ChordRequest::kGetNeighbors: in.message = chord::GetNeighbors{rid}; break;
    case proto::ChordRequest::kNotify: in.message = chord::Notify{}; break;
    case proto::ChordRequest::kPing: in.message = chord::Ping{rid}; break;
    case proto::ChordRequest::kLeaving: {
      auto peers = peers_from(request.leaving().peers());
      if (!peers) return peers.error();
      in.message = chord::Leaving{std::move(*peers)};
      break;
    }
    case proto::ChordRequest::kFindSuccessor: {
      auto key = id_from(request.find_successor(), "the key");
      if (!key) return key.error();
      in.message = chord::FindSuccessor{rid, *key};
      break;
    }
    case proto::ChordRequest::kPut: {
      auto key = id_from(request.put().key(), "the key");
      if (!key) return key.error();
      if (request.put().value().size() > chord::kMaxValueBytes) {
        return make_error(ErrorCode::corrupt, "value of {} bytes is over the limit of {}", request.put().value().size(),
                          chord::kMaxValueBytes);
      }
      in.message = chord::Put{rid, *key, request.put().value(), request.put().version()};
      break;
    }
    case proto::ChordRequest::kGet: {
      auto key = id_from(request.get(), "the key");
      if (!key) return key.error();
      in.message = chord::Get{rid, *key};
      break;
    }
    case proto::ChordRequest::kSyncOffer: {
      const auto& items = request.sync_offer().items();
      if (static_cast<std::size_t>(items.size()) > chord::kMaxSyncItems) {
        return make_error(ErrorCode::corrupt, "sync offer of {} keys, at most {}", items.size(), chord::kMaxSyncItems);
      }
      chord::SyncOffer offer{rid, request.sync_offer().from_owner(), {}};
      for (const auto& item : items) {
        auto key = id_from(item.key(), "a key");
        if (!key) return key.error();
        offer.items.push_back(chord::KeyVersion{*key, item.version()});
      }
      in.message = std::move(offer);
      break;
    }
    // Or with one a newer version added: not held against the sender.
    case proto::ChordRequest::BODY_NOT_SET:
      return make_error(ErrorCode::not_found, "a request without a body this version knows");
  }
  return in;
}

proto::ChordReply encode_reply(const NodeId& self, const std::string& executor,
                               const std::optional<chord::Message>& reply) {
  proto::ChordReply out;
  out.set_node_id(bytes_of(self));
  out.set_executor(executor);
  if (!reply) {
    out.mutable_none();
    return out;
  }
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, chord::Neighbors>) {
          auto* n = out.mutable_neighbors();
          if (m.predecessor) put_peer(n->mutable_predecessor(), *m.predecessor);
          put_peers(n->mutable_successors(), m.successors);
        } else if constexpr (std::is_same_v<T, chord::Pong>) {
          out.mutable_pong();
        } else if constexpr (std::is_same_v<T, chord::FoundSuccessor>) {
          out.mutable_found_successor()->set_done(m.done);
          put_peers(out.mutable_found_successor()->mutable_nodes(), m.nodes);
        } else if constexpr (std::is_same_v<T, chord::PutReply>) {
          auto* r = out.mutable_put_result();
          r->set_stored(m.stored);
          r->set_version(m.version);
          r->set_error(m.error);
        } else if constexpr (std::is_same_v<T, chord::GetReply>) {
          auto* r = out.mutable_get_result();
          r->set_found(m.found);
          r->set_value(m.value);
          r->set_version(m.version);
        } else if constexpr (std::is_same_v<T, chord::SyncWant>) {
          for (const auto& key : m.keys) out.mutable_sync_want()->add_keys(bytes_of(key));
        } else {
          out.mutable_none();
        }
      },
      *reply);
  return out;
}

Result<ChordAnswer> decode_reply(const proto::ChordReply& reply, std::uint64_t rid) {
  auto from = id_from(reply.node_id(), "the answerer's node id");
  if (!from) return from.error();
  if (reply.executor().size() > kMaxExecutorLength) return make_error(ErrorCode::corrupt, "executor name too long");
  ChordAnswer answer{*from, reply.executor(), std::nullopt, reply.relayed()};
  switch (reply.body_case()) {
    case proto::ChordReply::kNone: break;
    case proto::ChordReply::kNeighbors: {
      chord::Neighbors n{rid, std::nullopt, {}};
      if (reply.neighbors().has_predecessor()) {
        auto pred = peer_from(reply.neighbors().predecessor());
        if (!pred) return pred.error();
        n.predecessor = std::move(*pred);
      }
      auto succ = peers_from(reply.neighbors().successors());
      if (!succ) return succ.error();
      n.successors = std::move(*succ);
      answer.message = std::move(n);
      break;
    }
    case proto::ChordReply::kPong: answer.message = chord::Pong{rid}; break;
    case proto::ChordReply::kFoundSuccessor: {
      auto nodes = peers_from(reply.found_successor().nodes());
      if (!nodes) return nodes.error();
      answer.message = chord::FoundSuccessor{rid, reply.found_successor().done(), std::move(*nodes)};
      break;
    }
    case proto::ChordReply::kPutResult: {
      constexpr std::size_t kMaxErrorLength = 300;
      const auto& r = reply.put_result();
      answer.message = chord::PutReply{rid, r.stored(), r.version(), r.error().substr(0, kMaxErrorLength)};
      break;
    }
    case proto::ChordReply::kGetResult: {
      const auto& r = reply.get_result();
      if (r.value().size() > chord::kMaxValueBytes) return make_error(ErrorCode::corrupt, "value over the limit");
      answer.message = chord::GetReply{rid, r.found(), r.value(), r.version()};
      break;
    }
    case proto::ChordReply::kSyncWant: {
      const auto& keys = reply.sync_want().keys();
      if (static_cast<std::size_t>(keys.size()) > chord::kMaxSyncItems) {
        return make_error(ErrorCode::corrupt, "sync want of {} keys, at most {}", keys.size(), chord::kMaxSyncItems);
      }
      chord::SyncWant want{rid, {}};
      for (const auto& k : keys) {
        auto key = id_from(k, "a key");
        if (!key) return key.error();
        want.keys.push_back(*key);
      }
      answer.message = std::move(want);
      break;
    }
    case proto::ChordReply::BODY_NOT_SET: return make_error(ErrorCode::corrupt, "reply without a body");
  }
  return answer;
}

}  // namespace p2pd::net
