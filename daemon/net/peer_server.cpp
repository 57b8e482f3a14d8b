#include "daemon/net/peer_server.hpp"

#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

#include "common/log.hpp"
#include "common/version.hpp"
#include "daemon/net/call_rates.hpp"
#include "daemon/net/dial_back.hpp"
#include "daemon/net/peer_connections.hpp"
#include "daemon/net/peer_listener.hpp"
#include "daemon/net/score_interceptor.hpp"
#include "daemon/net/trace_interceptors.hpp"
#include "daemon/tls/secure_transport.hpp"
#include "daemon/trace/event_record.hpp"
#include "proto/peer.grpc.pb.h"

namespace p2pd::net {

struct PeerSelfState {
  std::mutex mutex;
  std::string reachability = "unknown";
  std::atomic<bool> relayed{false};
};

namespace {

std::optional<NodeId> node_id_of(const std::string& bytes) {
  return NodeId::from_bytes(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

// A message that failed its checks: INVALID_ARGUMENT (which counts against
// the sender, score_interceptor.hpp) only when it is malformed, not when it
// is merely not for us or from a newer version.
grpc::Status refusal(const Error& error) {
  const bool malformed = error.code == ErrorCode::invalid_argument || error.code == ErrorCode::corrupt;
  return {malformed ? grpc::StatusCode::INVALID_ARGUMENT : grpc::StatusCode::FAILED_PRECONDITION, error.message};
}

grpc::ServerUnaryReactor* refuse(grpc::ServerUnaryReactor* reactor, grpc::StatusCode code, std::string message) {
  reactor->Finish(grpc::Status(code, std::move(message)));
  return reactor;
}

// A node id a message claims for its sender (`claimed`, raw bytes) must be
// the one the connection proved with its key; claiming another is
// malformed (and scored). nullopt: it is.
std::optional<grpc::Status> not_the_caller(const PeerConnections& connections, grpc::CallbackServerContext* context,
                                           const std::string& claimed) {
  const auto caller = connections.find(context->peer());
  if (!caller) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "this connection proved no node id");
  if (claimed.size() != NodeId::kBytes ||
      !std::equal(claimed.begin(), claimed.end(), caller->id.bytes().begin(),
                  [](char a, std::uint8_t b) { return static_cast<std::uint8_t>(a) == b; })) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        fmt::format("the message claims to come from another node than this connection's ({})",
                                    caller->id.short_hex()));
  }
  return std::nullopt;
}

// Where the caller's connection came from, for connections accepted on the
// peer port (relayed and punched ones say nothing useful).
std::optional<HostPort> accepted_from(const PeerConnections& connections, grpc::CallbackServerContext* context) {
  const auto caller = connections.find(context->peer());
  return caller ? caller->accepted_from : std::nullopt;
}

}  // namespace

// Every call passes here first: calls past the caller's rate
// (call_rates.hpp) are refused, and cost an accepted caller's address.
class CallGate {
 public:
  using Banned = std::function<void(const std::string& address)>;
  CallGate(const PeerConnections& connections, CallRateRules rules, PeerScores& scores, Banned banned)
      : m_connections(connections), m_rates(rules), m_scores(scores), m_banned(std::move(banned)) {}

  std::optional<grpc::Status> admit(grpc::CallbackServerContext* context) {
    const auto caller = m_connections.find(context->peer());
    if (!caller) return std::nullopt;  // ended meanwhile; the handler refuses what it must
    const std::string address = caller->accepted_from ? address_key(caller->accepted_from->host) : std::string();
    const auto now = CallRates::Clock::now();
    if (m_rates.admit(caller->id.hex(), address, now)) return std::nullopt;
    if (!address.empty() && m_scores.penalize(address, over_rate_points(m_rates.rules().calls_per_second), now))
      m_banned(address);
    if (const auto held_back = m_log.admit()) {
      log::warn(log::Category::net, "node {}{} calls faster than {} a second: its calls are refused{}",
                caller->id.short_hex(), address.empty() ? std::string() : " at " + address,
                m_rates.rules().calls_per_second, log::held_back_note(*held_back));
    }
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        fmt::format("more than {} calls a second from node {}", m_rates.rules().calls_per_second,
                                    caller->id.short_hex()));
  }

 private:
  const PeerConnections& m_connections;
  CallRates m_rates;
  PeerScores& m_scores;
  Banned m_banned;
  log::Limiter m_log{5, std::chrono::minutes(1)};
};

// Ping touches only our id, version and reachability, so it answers on
// gRPC's thread; handlers that touch protocol state post onto the node.
class PeerService final : public proto::Peer::CallbackService {
 public:
  PeerService(const NodeId& self, std::shared_ptr<PeerSelfState> state, ConnectivityHandler& connectivity,
              const PeerConnections& connections, tls::SecureTransport& transport, CallGate& gate)
      : m_gate(gate),
        m_self(self),
        m_state(std::move(state)),
        m_connectivity(connectivity),
        m_connections(connections),
        m_dial_backs(transport) {}

  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* context, const proto::PingRequest* request,
                                 proto::PingReply* reply) override {
    auto* reactor = context->DefaultReactor();
    if (auto refused = m_gate.admit(context)) {
      reactor->Finish(*refused);
      return reactor;
    }
    if (!request->node_id().empty() && request->node_id().size() != NodeId::kBytes) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "node_id must be 20 bytes"));
      return reactor;
    }
    if (!request->node_id().empty()) {
      if (auto refused = not_the_caller(m_connections, context, request->node_id())) {
        reactor->Finish(*refused);
        return reactor;
      }
    }
    reply->set_node_id(std::string(m_self.bytes().begin(), m_self.bytes().end()));
    reply->set_version(kVersion);
    if (auto observed = accepted_from(m_connections, context)) reply->set_observed_addr(observed->to_string());
    {
      std::lock_guard lock(m_state->mutex);
      reply->set_reachability(m_state->reachability);
    }
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* Reserve(grpc::CallbackServerContext* context, const proto::ReserveRequest* request,
                                    proto::ReserveReply* reply) override {
    auto* reactor = context->DefaultReactor();
    if (auto refused = m_gate.admit(context)) {
      reactor->Finish(*refused);
      return reactor;
    }
    auto caller = node_id_of(request->node_id());
    if (!caller) return refuse(reactor, grpc::StatusCode::INVALID_ARGUMENT, "node_id must be 20 bytes");
    if (auto refused = not_the_caller(m_connections, context, request->node_id())) {
      reactor->Finish(*refused);
      return reactor;
    }
    auto observed = accepted_from(m_connections, context);
    if (!observed) return refuse(reactor, grpc::StatusCode::FAILED_PRECONDITION, "the caller's address is not IP");
    m_connectivity.on_relay_reserve(*caller, observed->host, [reactor, reply](Result<RelayGrant> grant) {
      if (!grant) {
        reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, grant.error().message));
        return;
      }
      reply->set_addr(grant->addr);
      reply->set_secret(grant->secret);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* DialBack(grpc::CallbackServerContext* context, const proto::DialBackRequest* request,
                                     proto::DialBackReply* reply) override {
    auto* reactor = context->DefaultReactor();
    if (auto refused = m_gate.admit(context)) {
      reactor->Finish(*refused);
      return reactor;
    }
    auto caller = node_id_of(request->node_id());
    if (!caller || request->port() == 0 || request->port() > 65535) {
      return refuse(reactor, grpc::StatusCode::INVALID_ARGUMENT, "node_id must be 20 bytes, port 1..65535");
    }
    if (auto refused = not_the_caller(m_connections, context, request->node_id())) {
      reactor->Finish(*refused);
      return reactor;
    }
    // Only the caller's own IP is dialled: a peer cannot aim us at others.
    auto observed = accepted_from(m_connections, context);
    if (!observed) return refuse(reactor, grpc::StatusCode::FAILED_PRECONDITION, "the caller's address is not IP");
    const HostPort target{observed->host, static_cast<std::uint16_t>(request->port())};
    reply->set_dialed_addr(target.to_string());
    const bool started = m_dial_backs.dial(target, *caller, [reactor, reply](bool reached, std::string error) {
      reply->set_reached(reached);
      reply->set_error(std::move(error));
      reactor->Finish(grpc::Status::OK);
    });
    if (!started) reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many dial-backs in flight"));
    return reactor;
  }

  grpc::ServerUnaryReactor* PunchOffer(grpc::CallbackServerContext* context, const proto::PunchOfferRequest* request,
                                       proto::PunchOfferReply* reply) override {
    auto* reactor = context->DefaultReactor();
    if (auto refused = m_gate.admit(context)) {
      reactor->Finish(*refused);
      return reactor;
    }
    auto caller = node_id_of(request->node_id());
    if (!caller) return refuse(reactor, grpc::StatusCode::INVALID_ARGUMENT, "node_id must be 20 bytes");
    if (auto refused = not_the_caller(m_connections, context, request->node_id())) {
      reactor->Finish(*refused);
      return reactor;
    }
    // An IP address, never a name: we connect to it, and resolve nothing a peer names.
    auto addr = parse_host_port(request->addr(), false);
    if (!addr || addr->port == 0 || !is_ip_literal(addr->host)) {
      return refuse(reactor, grpc::StatusCode::INVALID_ARGUMENT, "addr must be IP:PORT");
    }
    m_connectivity.on_punch_offer(
        PunchOfferIn{*caller, request->punch_id(), *addr}, [reactor, reply](Result<PunchAnswerOut> answer) {
          if (!answer) {
            const auto code = answer.error().code == ErrorCode::unavailable ? grpc::StatusCode::RESOURCE_EXHAUSTED
                                                                            : grpc::StatusCode::FAILED_PRECONDITION;
            reactor->Finish(grpc::Status(code, answer.error().message));
            return;
          }
          reply->set_addr(answer->addr.to_string());
          reply->set_prepare_ms(answer->prepare_ms);
          reactor->Finish(grpc::Status::OK);
        });
    return reactor;
  }

  grpc::ServerUnaryReactor* PunchGo(grpc::CallbackServerContext* context, const proto::PunchGoRequest* request,
                                    proto::PunchGoReply* /*reply*/) override {
    auto* reactor = context->DefaultReactor();
    if (auto refused = m_gate.admit(context)) {
      reactor->Finish(*refused);
      return reactor;
    }
    auto caller = node_id_of(request->node_id());
    if (!caller) return refuse(reactor, grpc::StatusCode::INVALID_ARGUMENT, "node_id must be 20 bytes");
    if (auto refused = not_the_caller(m_connections, context, request->node_id())) {
      reactor->Finish(*refused);
      return reactor;
    }
    m_connectivity.on_punch_go(*caller, request->punch_id(), [reactor](Result<void> started) {
      reactor->Finish(started ? grpc::Status::OK : grpc::Status(grpc::StatusCode::NOT_FOUND, started.error().message));
    });
    return reactor;
  }

 private:
  CallGate& m_gate;
  NodeId m_self;
  std::shared_ptr<PeerSelfState> m_state;
  ConnectivityHandler& m_connectivity;
  const PeerConnections& m_connections;
  DialBacker m_dial_backs;
};

class ChordService final : public proto::Chord::CallbackService {
 public:
  ChordService(const NodeId& self, std::string executor, std::shared_ptr<PeerSelfState> state, ChordHandler& handler,
               const PeerConnections& connections, CallGate& gate)
      : m_gate(gate),
        m_self(self),
        m_executor(std::move(executor)),
        m_state(std::move(state)),
        m_handler(handler),
        m_connections(connections) {}

  grpc::ServerUnaryReactor* Call(grpc::CallbackServerContext* context, const proto::ChordRequest* request,
                                 proto::ChordReply* reply) override {
    auto* reactor = context->DefaultReactor();
    if (auto refused = m_gate.admit(context)) {
      reactor->Finish(*refused);
      return reactor;
    }
    auto inbound = decode_request(*request);
    if (inbound) {
      if (auto refused = not_the_caller(m_connections, context, request->from().node_id())) {
        reactor->Finish(*refused);
        return reactor;
      }
    }
    if (!inbound) {
      log::debug(log::Category::chord, "refused a Chord message from {}: {}", context->peer(), inbound.error().message);
      reactor->Finish(refusal(inbound.error()));
      return reactor;
    }
    // The reply object stays valid until Finish(): gRPC calls OnDone only after it.
    m_handler.on_chord_message(std::move(*inbound), [this, reactor, reply](std::optional<chord::Message> answer) {
      *reply = encode_reply(m_self, m_executor, answer);
      reply->set_relayed(m_state->relayed.load());
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

 private:
  CallGate& m_gate;
  NodeId m_self;
  std::string m_executor;
  std::shared_ptr<PeerSelfState> m_state;
  ChordHandler& m_handler;
  const PeerConnections& m_connections;
};

class RaftService final : public proto::Raft::CallbackService {
 public:
  RaftService(const NodeId& self, RaftHandler& handler, const PeerConnections& connections, CallGate& gate)
      : m_gate(gate), m_self(self), m_handler(handler), m_connections(connections) {}

  grpc::ServerUnaryReactor* Step(grpc::CallbackServerContext* context, const proto::RaftMessage* request,
                                 proto::RaftAck* /*reply*/) override {
    auto* reactor = context->DefaultReactor();
    if (auto refused = m_gate.admit(context)) {
      reactor->Finish(*refused);
      return reactor;
    }
    auto inbound = decode_raft(*request, m_self);
    if (inbound) {
      if (auto refused = not_the_caller(m_connections, context, request->from_id())) {
        reactor->Finish(*refused);
        return reactor;
      }
    }
    if (!inbound) {
      log::debug(log::Category::raft, "refused a Raft message from {}: {}", context->peer(), inbound.error().message);
      reactor->Finish(refusal(inbound.error()));
      return reactor;
    }
    m_handler.on_raft_message(std::move(*inbound));
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  CallGate& m_gate;
  NodeId m_self;
  RaftHandler& m_handler;
  const PeerConnections& m_connections;
};

namespace {

grpc::Status invalid(const Error& error) {
  return {grpc::StatusCode::INVALID_ARGUMENT, error.message};
}

grpc::Status to_status(const Error& error) {
  switch (error.code) {
    case ErrorCode::invalid_argument:
    case ErrorCode::corrupt: return {grpc::StatusCode::INVALID_ARGUMENT, error.message};
    case ErrorCode::not_found: return {grpc::StatusCode::NOT_FOUND, error.message};
    case ErrorCode::unavailable: return {grpc::StatusCode::RESOURCE_EXHAUSTED, error.message};
    default: return {grpc::StatusCode::INTERNAL, error.message};
  }
}

}  // namespace

class BlobService final : public proto::Blobs::CallbackService {
 public:
  BlobService(BlobHandler& handler, CallGate& gate) : m_gate(gate), m_handler(handler) {}

  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* context, const proto::BlobPut* request,
                                proto::BlobPutReply* /*reply*/) override {
    auto* reactor = context->DefaultReactor();
    if (auto refused = m_gate.admit(context)) {
      reactor->Finish(*refused);
      return reactor;
    }
    auto put = decode_blob_put(*request);
    if (!put) {
      reactor->Finish(invalid(put.error()));
      return reactor;
    }
    m_handler.on_blob_put(std::move(*put), [reactor](Result<void> stored) {
      reactor->Finish(stored ? grpc::Status::OK : to_status(stored.error()));
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context, const proto::BlobGet* request,
                                proto::BlobGetReply* reply) override {
    auto* reactor = context->DefaultReactor();
    if (auto refused = m_gate.admit(context)) {
      reactor->Finish(*refused);
      return reactor;
    }
    auto id = decode_blob_id(request->id());
    if (!id) {
      reactor->Finish(invalid(id.error()));
      return reactor;
    }
    m_handler.on_blob_get(std::move(*id), [reactor, reply](Result<std::optional<std::string>> blob) {
      // A blob of ours found damaged is our problem, not the caller's.
      if (!blob && blob.error().code == ErrorCode::corrupt) {
        return reactor->Finish(grpc::Status(grpc::StatusCode::DATA_LOSS, blob.error().message));
      }
      if (!blob) return reactor->Finish(to_status(blob.error()));
      reply->set_found(blob->has_value());
      if (*blob) *reply->mutable_data() = std::move(**blob);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

 private:
  CallGate& m_gate;
  BlobHandler& m_handler;
};

// Answered on gRPC's thread: the recorder is thread-safe, and reading the
// ring is disk work the io thread should not wait for.
class TraceService final : public proto::Trace::CallbackService {
 public:
  TraceService(trace::Recorder& recorder, CallGate& gate) : m_gate(gate), m_recorder(recorder) {}

  grpc::ServerUnaryReactor* Events(grpc::CallbackServerContext* context, const proto::TraceQuery* request,
                                   proto::TraceEvents* reply) override {
    auto* reactor = context->DefaultReactor();
    if (auto refused = m_gate.admit(context)) {
      reactor->Finish(*refused);
      return reactor;
    }
    if (request->job_id().size() > trace::kMaxTraceIdBytes) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "job id too long"));
      return reactor;
    }
    const std::size_t limit = std::min<std::size_t>(request->limit() == 0 ? kMaxTraceEventsPerReply : request->limit(),
                                                    kMaxTraceEventsPerReply);
    auto events = m_recorder.events(request->job_id(), request->after_seq(), limit + 1);
    if (!events) {
      // Not UNAVAILABLE: to a caller on a punched connection that means the
      // connection is gone (PeerClient::unary).
      reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL, events.error().message));
      return reactor;
    }
    // The newest `limit`, and within the message size.
    std::size_t first = events->size() > limit ? events->size() - limit : 0;
    reply->set_truncated(first > 0);
    std::size_t bytes = 0;
    for (std::size_t i = first; i < events->size(); ++i) {
      auto* record = reply->add_events();
      trace::to_record((*events)[i], *record);
      bytes += record->ByteSizeLong();
      if (bytes > kMaxTraceReplyBytes) {
        reply->set_truncated(true);
        break;
      }
    }
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  CallGate& m_gate;
  trace::Recorder& m_recorder;
};

class JobsService final : public proto::Jobs::CallbackService {
 public:
  JobsService(JobsHandler& handler, const PeerConnections& connections, CallGate& gate)
      : m_gate(gate), m_handler(handler), m_connections(connections) {}

  grpc::ServerUnaryReactor* Propose(grpc::CallbackServerContext* context, const proto::JobProposal* request,
                                    proto::JobProposalReply* reply) override {
    auto* reactor = context->DefaultReactor();
    if (auto refused = m_gate.admit(context)) {
      reactor->Finish(*refused);
      return reactor;
    }
    auto proposal = decode_job_proposal(*request);
    if (!proposal) {
      reactor->Finish(invalid(proposal.error()));
      return reactor;
    }
    if (auto refused = not_the_caller(m_connections, context, request->from_id())) {
      reactor->Finish(*refused);
      return reactor;
    }
    m_handler.on_job_proposal(std::move(*proposal), [reactor, reply](ProposalAnswer answer) {
      reply->set_accepted(answer.accepted);
      reply->set_error(answer.error);
      if (answer.leader)
        reply->set_leader_id(std::string(answer.leader->bytes().begin(), answer.leader->bytes().end()));
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* context, const proto::WorkerHeartbeat* request,
                                      proto::WorkerHeartbeatReply* reply) override {
    auto* reactor = context->DefaultReactor();
    if (auto refused = m_gate.admit(context)) {
      reactor->Finish(*refused);
      return reactor;
    }
    auto heartbeat = decode_worker_heartbeat(*request);
    if (!heartbeat) {
      reactor->Finish(invalid(heartbeat.error()));
      return reactor;
    }
    if (auto refused = not_the_caller(m_connections, context, request->node_id())) {
      reactor->Finish(*refused);
      return reactor;
    }
    m_handler.on_worker_heartbeat(std::move(*heartbeat), [reactor, reply](bool leader) {
      reply->set_leader(leader);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* ReportShard(grpc::CallbackServerContext* context, const proto::ShardReport* request,
                                        proto::ShardReportReply* reply) override {
    auto* reactor = context->DefaultReactor();
    if (auto refused = m_gate.admit(context)) {
      reactor->Finish(*refused);
      return reactor;
    }
    auto report = decode_shard_report(*request);
    if (!report) {
      reactor->Finish(invalid(report.error()));
      return reactor;
    }
    if (auto refused = not_the_caller(m_connections, context, request->node_id())) {
      reactor->Finish(*refused);
      return reactor;
    }
    m_handler.on_shard_report(std::move(*report), [reactor, reply](Result<void> taken) {
      reply->set_accepted(taken.has_value());
      if (!taken) reply->set_error(taken.error().message);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

 private:
  CallGate& m_gate;
  JobsHandler& m_handler;
  const PeerConnections& m_connections;
};

// What the transport's thread needs after a handshake, shared so that it
// stays valid however late the handshake ends.
struct PeerServer::Intake {
  std::mutex mutex;
  grpc::Server* server = nullptr;  // null once shutting down: connections are then closed
  PeerConnections connections;
};

Result<std::unique_ptr<PeerServer>> PeerServer::start(const HostPort& listen, tls::SecureTransport& transport,
                                                      const std::string& executor, ChordHandler& chord,
                                                      RaftHandler& raft, BlobHandler& blobs, JobsHandler& jobs,
                                                      ConnectivityHandler& connectivity, ConnectionCaps caps,
                                                      CallRateRules rates, trace::Tracer* tracer,
                                                      trace::Recorder* recorder) {
  const NodeId self = transport.self();
  std::unique_ptr<PeerServer> server(new PeerServer());
  server->m_transport = &transport;
  server->m_intake = std::make_shared<Intake>();
  const PeerConnections& connections = server->m_intake->connections;
  auto listener = PeerListener::bind(listen, caps);
  if (!listener) return listener.error();
  server->m_listener = std::move(*listener);
  server->m_scores = std::make_unique<PeerScores>();
  const auto ban = [listener = server->m_listener.get(), &transport](const std::string& key, std::string_view why) {
    for (const ConnectionId id : listener->ban(key, why)) transport.close_watched(id);
  };
  server->m_gate = std::make_unique<CallGate>(connections, rates, *server->m_scores, [ban](const std::string& key) {
    ban(key, "calls past its rate, again and again");
  });
  CallGate& gate = *server->m_gate;
  server->m_self_state = std::make_shared<PeerSelfState>();
  server->m_service =
      std::make_unique<PeerService>(self, server->m_self_state, connectivity, connections, transport, gate);
  server->m_chord = std::make_unique<ChordService>(self, executor, server->m_self_state, chord, connections, gate);
  server->m_raft = std::make_unique<RaftService>(self, raft, connections, gate);
  server->m_blobs = std::make_unique<BlobService>(blobs, gate);
  server->m_jobs = std::make_unique<JobsService>(jobs, connections, gate);
  if (recorder != nullptr) server->m_trace = std::make_unique<TraceService>(*recorder, gate);
  // gRPC does not listen itself: the listener accepts and caps, the
  // transport runs TLS, and gRPC is handed the plaintext end.
  grpc::ServerBuilder builder;
  builder.RegisterService(server->m_service.get());
  builder.RegisterService(server->m_chord.get());
  builder.RegisterService(server->m_raft.get());
  builder.RegisterService(server->m_blobs.get());
  builder.RegisterService(server->m_jobs.get());
  if (server->m_trace) builder.RegisterService(server->m_trace.get());
  builder.SetMaxReceiveMessageSize(kMaxPeerMessageBytes);
  builder.SetMaxSendMessageSize(kMaxPeerMessageBytes);
  // Room for a trace stamp (trace::kMaxStampBytes, base64) beside gRPC's own headers.
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, 32 << 10);
  // Anyone can connect to the peer port. A connection that has not
  // finished the TLS handshake is closed after
  // tls::SecureTransport::kHandshakeTimeout; one that carries no call for kPeerIdleTimeout is
  // told to go away (peers reconnect when they next call; punched and
  // relayed connections carry a health ping more often than that); and a
  // connection carries at most kMaxPeerStreams calls at once.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, static_cast<int>(kPeerIdleTimeout.count()));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, kMaxPeerStreams);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  if (tracer != nullptr) interceptors.push_back(make_trace_reader(*tracer));
  interceptors.push_back(make_score_keeper(*server->m_scores, connections, [ban](const std::string& key) {
    ban(key, "malformed message after malformed message");
  }));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server->m_server = builder.BuildAndStart();
  if (!server->m_server) return make_error(ErrorCode::unavailable, "cannot start the peer RPC server");
  server->m_intake->server = server->m_server.get();
  auto* raw = server.get();
  const auto hand_over = [raw](int fd, const HostPort& from, PeerListener::Admitted admitted) {
    raw->secure(fd, from, std::nullopt, std::move(admitted));
  };
  if (!server->m_listener->start(hand_over, *server->m_scores)) {
    return make_error(ErrorCode::io, "cannot start accepting peers on {}", listen.to_string());
  }
  server->m_bound = HostPort{listen.host, server->m_listener->port()};
  log::info(log::Category::net, "listening for peers on {}", server->m_bound.to_string());
  return server;
}

void PeerServer::add_connection(int fd, std::optional<NodeId> expected) {
  secure(fd, std::nullopt, expected, std::nullopt);
}

void PeerServer::secure(int fd, std::optional<HostPort> accepted_from, std::optional<NodeId> expected,
                        std::optional<PeerListener::Admitted> admitted) {
  std::optional<tls::SecureTransport::Watch> watch;
  if (admitted) watch = tls::SecureTransport::Watch{admitted->id, std::move(admitted->ended)};
  m_transport->secure_inbound(
      fd, expected,
      [intake = m_intake, accepted_from](Result<tls::SecuredConnection> secured) {
        if (!secured) return;  // logged by the transport
        std::lock_guard lock(intake->mutex);
        if (intake->server == nullptr) {
          ::close(secured->fd);
          return;
        }
        intake->connections.add(secured->fd, ConnectedPeer{secured->peer, accepted_from});
        grpc::AddInsecureChannelFromFd(intake->server, secured->fd);
      },
      std::move(watch));
}

void PeerServer::set_reachability(std::string reachability) {
  std::lock_guard lock(m_self_state->mutex);
  m_self_state->reachability = std::move(reachability);
}

void PeerServer::set_relayed(bool relayed) {
  m_self_state->relayed = relayed;
}

void PeerServer::shutdown(std::chrono::milliseconds grace) {
  if (m_listener) m_listener->stop();  // no new connections from here
  if (!m_server) return;
  {
    std::lock_guard lock(m_intake->mutex);
    m_intake->server = nullptr;  // nor handed over by the transport
  }
  m_server->Shutdown(std::chrono::system_clock::now() + grace);
  m_server->Wait();
  m_server.reset();
}

PeerServer::~PeerServer() {
  shutdown(std::chrono::milliseconds(0));
}

}  // namespace p2pd::net
