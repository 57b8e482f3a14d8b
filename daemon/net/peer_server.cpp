#include "daemon/net/peer_server.hpp"

#include <grpcpp/grpcpp.h>

#include "common/log.hpp"
#include "common/version.hpp"
#include "proto/peer.grpc.pb.h"

namespace p2pd::net {

// Ping touches only immutable data (our id and version), so it answers on
// gRPC's thread; handlers that touch protocol state post onto the node.
class PeerService final : public proto::Peer::CallbackService {
 public:
  explicit PeerService(const NodeId& self) : m_self(self) {}

  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* context, const proto::PingRequest* request,
                                 proto::PingReply* reply) override {
    auto* reactor = context->DefaultReactor();
    if (!request->node_id().empty() && request->node_id().size() != NodeId::kBytes) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "node_id must be 20 bytes"));
      return reactor;
    }
    reply->set_node_id(std::string(m_self.bytes().begin(), m_self.bytes().end()));
    reply->set_version(kVersion);
    if (auto observed = host_port_from_grpc_peer(context->peer())) reply->set_observed_addr(observed->to_string());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  NodeId m_self;
};

class ChordService final : public proto::Chord::CallbackService {
 public:
  ChordService(const NodeId& self, std::string executor, ChordHandler& handler)
      : m_self(self), m_executor(std::move(executor)), m_handler(handler) {}

  grpc::ServerUnaryReactor* Call(grpc::CallbackServerContext* context, const proto::ChordRequest* request,
                                 proto::ChordReply* reply) override {
    auto* reactor = context->DefaultReactor();
    auto inbound = decode_request(*request);
    if (!inbound) {
      log::debug(log::Category::chord, "refused a Chord message from {}: {}", context->peer(), inbound.error().message);
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, inbound.error().message));
      return reactor;
    }
    // The reply object stays valid until Finish(): gRPC calls OnDone only after it.
    m_handler.on_chord_message(std::move(*inbound), [this, reactor, reply](std::optional<chord::Message> answer) {
      *reply = encode_reply(m_self, m_executor, answer);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

 private:
  NodeId m_self;
  std::string m_executor;
  ChordHandler& m_handler;
};

class RaftService final : public proto::Raft::CallbackService {
 public:
  RaftService(const NodeId& self, RaftHandler& handler) : m_self(self), m_handler(handler) {}

  grpc::ServerUnaryReactor* Step(grpc::CallbackServerContext* context, const proto::RaftMessage* request,
                                 proto::RaftAck* /*reply*/) override {
    auto* reactor = context->DefaultReactor();
    auto inbound = decode_raft(*request, m_self);
    if (!inbound) {
      log::debug(log::Category::raft, "refused a Raft message from {}: {}", context->peer(), inbound.error().message);
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, inbound.error().message));
      return reactor;
    }
    m_handler.on_raft_message(std::move(*inbound));
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  NodeId m_self;
  RaftHandler& m_handler;
};

std::optional<HostPort> host_port_from_grpc_peer(std::string_view peer) {
  std::string text;
  if (peer.starts_with("ipv4:")) {
    text = peer.substr(5);
  } else if (peer.starts_with("ipv6:")) {
    text = peer.substr(5);
    for (auto [escaped, plain] : {std::pair{"%5B", "["}, std::pair{"%5D", "]"}}) {
      for (auto at = text.find(escaped); at != std::string::npos; at = text.find(escaped)) text.replace(at, 3, plain);
    }
  } else {
    return std::nullopt;
  }
  auto parsed = parse_host_port(text, false);
  if (!parsed) return std::nullopt;
  return *parsed;
}

Result<std::unique_ptr<PeerServer>> PeerServer::start(const HostPort& listen, const NodeId& self,
                                                      const std::string& executor, ChordHandler& chord,
                                                      RaftHandler& raft) {
  std::unique_ptr<PeerServer> server(new PeerServer());
  server->m_service = std::make_unique<PeerService>(self);
  server->m_chord = std::make_unique<ChordService>(self, executor, chord);
  server->m_raft = std::make_unique<RaftService>(self, raft);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen.to_string(), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(server->m_service.get());
  builder.RegisterService(server->m_chord.get());
  builder.RegisterService(server->m_raft.get());
  builder.SetMaxReceiveMessageSize(kMaxPeerMessageBytes);
  builder.SetMaxSendMessageSize(kMaxPeerMessageBytes);
  // gRPC sets SO_REUSEPORT by default, which would let a second daemon bind
  // the same port and steal half its connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  server->m_server = builder.BuildAndStart();
  if (!server->m_server || port == 0) {
    return make_error(ErrorCode::unavailable, "cannot listen on {} (address in use, or not an address of this machine)",
                      listen.to_string());
  }
  server->m_bound = HostPort{listen.host, static_cast<std::uint16_t>(port)};
  log::info(log::Category::net, "listening for peers on {}", server->m_bound.to_string());
  return server;
}

void PeerServer::shutdown(std::chrono::milliseconds grace) {
  if (!m_server) return;
  m_server->Shutdown(std::chrono::system_clock::now() + grace);
  m_server->Wait();
  m_server.reset();
}

PeerServer::~PeerServer() {
  shutdown(std::chrono::milliseconds(0));
}

}  // namespace p2pd::net
