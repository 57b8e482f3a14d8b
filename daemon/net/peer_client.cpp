#include "daemon/net/peer_client.hpp"

#include <grpcpp/create_channel_posix.h>
#include <grpcpp/grpcpp.h>

#include "common/version.hpp"
#include "daemon/net/peer_server.hpp"
#include "daemon/net/secure_channel.hpp"
#include "daemon/net/trace_interceptors.hpp"
#include "daemon/tls/secure_transport.hpp"
#include "proto/peer.grpc.pb.h"

namespace p2pd::net {
namespace {

Error from_status(const HostPort& to, const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return make_error(ErrorCode::timed_out, "{} did not answer in time", to.to_string());
    case grpc::StatusCode::UNAVAILABLE:
      return make_error(ErrorCode::unavailable, "{} is unreachable: {}", to.to_string(), status.error_message());
    case grpc::StatusCode::CANCELLED: return make_error(ErrorCode::unavailable, "call to {} cancelled", to.to_string());
    default:
      return make_error(ErrorCode::unavailable, "{} answered with an error: {}", to.to_string(),
                        status.error_message());
  }
}

// A peer's reply is input like any other: validated, never asserted.
Result<PingResult> decode(const HostPort& to, const proto::PingReply& reply) {
  const auto& id = reply.node_id();
  auto node_id = NodeId::from_bytes(std::span(reinterpret_cast<const std::uint8_t*>(id.data()), id.size()));
  if (!node_id) {
    return make_error(ErrorCode::corrupt, "{} sent a node id of {} bytes, expected {}", to.to_string(), id.size(),
                      NodeId::kBytes);
  }
  constexpr std::size_t kMaxVersionLength = 64;
  if (reply.version().size() > kMaxVersionLength) {
    return make_error(ErrorCode::corrupt, "{} sent an oversized version string", to.to_string());
  }
  PingResult result{*node_id, reply.version(), std::nullopt, {}};
  if (!reply.observed_addr().empty()) {
    if (auto observed = parse_host_port(reply.observed_addr(), false)) result.observed = *observed;
  }
  // Older peers do not say; anything else is not believed.
  const auto& reachability = reply.reachability();
  if (reachability == "public" || reachability == "private") result.reachability = reachability;
  return result;
}

// A node id an answer claims must be the one its connection proved (the
// proxy noted it in the handshake, before the connection carried a call).
std::optional<Error> not_proven(const tls::SecureTransport& transport, const HostPort& to, const NodeId& claimed) {
  const auto proven = transport.proven_at(to.to_string());
  if (!proven)
    return make_error(ErrorCode::corrupt, "{} answered on a connection that proved no node id", to.to_string());
  if (*proven != claimed) {
    return make_error(ErrorCode::corrupt, "{} answered as node {} but its key is node {}", to.to_string(),
                      claimed.short_hex(), proven->short_hex());
  }
  return std::nullopt;
}

}  // namespace

PeerClient::PeerClient(NodeId self, Post post, tls::SecureTransport& transport, trace::Tracer* tracer)
    : m_self(self), m_post(std::move(post)), m_transport(transport), m_tracer(tracer) {}

PeerClient::~PeerClient() {
  shutdown();
}

grpc::ChannelArguments PeerClient::channel_arguments() const {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxPeerMessageBytes);
  args.SetMaxSendMessageSize(kMaxPeerMessageBytes);
  // Peers restart and come back: retry a lost connection within seconds,
  // not gRPC's default of up to two minutes.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return args;
}

std::shared_ptr<grpc::Channel> PeerClient::channel_for(const HostPort& to) {
  const std::string key = to.to_string();
  if (auto it = m_direct.find(key); it != m_direct.end()) return it->second;
  if (auto it = m_channels.find(key); it != m_channels.end()) return it->second;
  if (m_channels.size() >= kMaxChannels) m_channels.erase(m_channels.begin());
  grpc::ChannelArguments args = channel_arguments();
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  if (m_tracer != nullptr) interceptors.push_back(make_trace_stamper(*m_tracer));
  // Every connection to a peer is TLS, made by the transport's CONNECT
  // proxy (secure_channel.hpp).
  const std::string target = route_through(m_transport, key, args);
  auto channel = grpc::experimental::CreateCustomChannelWithInterceptors(target, grpc::InsecureChannelCredentials(),
                                                                         args, std::move(interceptors));
  m_channels.emplace(key, channel);
  return channel;
}

template <class Reply, class Call>
void PeerClient::unary(const HostPort& to, std::chrono::milliseconds timeout, std::shared_ptr<Call> call,
                       std::function<Result<Reply>(const grpc::Status&)> finish,
                       std::function<void(Result<Reply>)> done, DirectChannel over) {
  std::shared_ptr<grpc::Channel> channel;
  {
    std::lock_guard lock(m_mutex);
    if (m_closed || m_in_flight.size() >= kMaxCallsInFlight) {
      Error error = m_closed ? make_error(ErrorCode::unavailable, "shutting down")
                             : make_error(ErrorCode::unavailable, "too many peer calls in flight");
      m_post([done = std::move(done), error = std::move(error)] { done(error); });
      return;
    }
    if (!over && m_direct.contains(to.to_string())) ++m_direct_calls;
    channel = over ? over : channel_for(to);
    m_in_flight.insert(&call->context);
  }
  call->context.set_deadline(std::chrono::system_clock::now() + timeout);
  call->start(channel, [this, call, to, channel = std::weak_ptr<grpc::Channel>(channel), finish = std::move(finish),
                        done = std::move(done)](grpc::Status status) mutable {
    Result<Reply> result = finish(status);
    finish = nullptr;  // it may hold the call (and so the channel): see below
    std::lock_guard lock(m_mutex);
    m_in_flight.erase(&call->context);
    // A punched connection that fails a call is gone: it never reconnects,
    // and the relay is still there.
    std::shared_ptr<grpc::Channel> broken;  // freed off gRPC's thread, as the call (below)
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      auto direct = m_direct.find(to.to_string());
      if (direct != m_direct.end() && direct->second == channel.lock()) {
        broken = std::move(direct->second);
        m_direct.erase(direct);
        m_direct_broken.push_back(BrokenDirect{to, status.error_message()});
      }
    }
    // The call owns its stub, and so a reference to its channel. It must
    // not die here, on gRPC's callback thread: if that were the channel's
    // last reference, the channel would shut down its own callback queue
    // from inside it (a double free in gRPC 1.51). It dies on the io
    // thread, or in shutdown().
    if (!m_closed) {
      m_post([done = std::move(done), result = std::move(result), call = std::move(call),
              broken = std::move(broken)]() mutable {
        call.reset();
        broken.reset();
        done(std::move(result));
      });
    } else {
      // `done` may hold channels too (a direct one, in its captures).
      m_retired.push_back(std::move(call));
      m_retired.push_back(std::make_shared<std::function<void(Result<Reply>)>>(std::move(done)));
      if (broken) m_retired.push_back(std::move(broken));
    }
    if (m_in_flight.empty()) m_idle.notify_all();
  });
}

void PeerClient::ping(const HostPort& to, std::chrono::milliseconds timeout,
                      std::function<void(Result<PingResult>)> done) {
  ping_on(to, nullptr, timeout, std::move(done));
}

void PeerClient::ping_over(const DirectChannel& channel, const HostPort& to, std::chrono::milliseconds timeout,
                           std::function<void(Result<PingResult>)> done) {
  ping_on(to, channel, timeout, std::move(done));
}

void PeerClient::ping_on(const HostPort& to, DirectChannel over, std::chrono::milliseconds timeout,
                         std::function<void(Result<PingResult>)> done) {
  struct Call {
    grpc::ClientContext context;
    proto::PingRequest request;
    proto::PingReply reply;
    std::unique_ptr<proto::Peer::Stub> stub;
    void start(const std::shared_ptr<grpc::Channel>& channel, std::function<void(grpc::Status)> on_done) {
      stub = proto::Peer::NewStub(channel);
      stub->async()->Ping(&context, &request, &reply, std::move(on_done));
    }
  };
  auto call = std::make_shared<Call>();
  call->request.set_node_id(std::string(m_self.bytes().begin(), m_self.bytes().end()));
  call->request.set_version(kVersion);
  // wait_for_ready on a connection we made: it is still starting its HTTP/2 session.
  if (over) call->context.set_wait_for_ready(true);
  const bool proxied_checked_by_handshake = over != nullptr || has_direct(to);
  unary<PingResult>(
      to, timeout, call,
      [call, to, proxied_checked_by_handshake, &transport = m_transport](const grpc::Status& status) {
        if (!status.ok()) return Result<PingResult>(from_status(to, status));
        auto pong = decode(to, call->reply);
        // Over a channel the proxy made, the answer's id must be the one the
        // connection proved (a direct channel checked it in its handshake).
        if (pong && !proxied_checked_by_handshake) {
          if (auto wrong = not_proven(transport, to, pong->node_id)) return Result<PingResult>(*wrong);
        }
        return pong;
      },
      std::move(done), std::move(over));
}

void PeerClient::channel_over(int fd, const HostPort& to, std::optional<NodeId> expected,
                              std::function<void(Result<DirectChannel>)> done) {
  m_transport.secure_outbound(
      fd, expected, [this, to, done = std::move(done)](Result<tls::SecuredConnection> secured) mutable {
        if (!secured) {
          m_post([done = std::move(done), error = secured.error()] { done(error); });
          return;
        }
        grpc::ChannelArguments args = channel_arguments();
        std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
        if (m_tracer != nullptr) interceptors.push_back(make_trace_stamper(*m_tracer));
        DirectChannel channel = grpc::experimental::CreateCustomInsecureChannelWithInterceptorsFromFd(
            to.to_string(), secured->fd, args, std::move(interceptors));
        m_post([done = std::move(done), channel = std::move(channel)]() mutable { done(std::move(channel)); });
      });
}

void PeerClient::use_direct(const HostPort& to, DirectChannel channel) {
  std::lock_guard lock(m_mutex);
  if (m_closed) return;
  if (!m_direct.contains(to.to_string()) && m_direct.size() >= kMaxChannels) return;
  m_direct[to.to_string()] = std::move(channel);
}

bool PeerClient::drop_direct(const HostPort& to) {
  std::lock_guard lock(m_mutex);
  return m_direct.erase(to.to_string()) > 0;
}

std::vector<HostPort> PeerClient::direct_peers() const {
  std::lock_guard lock(m_mutex);
  std::vector<HostPort> peers;
  for (const auto& [addr, channel] : m_direct) {
    if (auto parsed = parse_host_port(addr, false)) peers.push_back(*parsed);
  }
  return peers;
}

std::uint64_t PeerClient::direct_calls() const {
  std::lock_guard lock(m_mutex);
  return m_direct_calls;
}

PeerClient::DirectChannel PeerClient::direct_channel(const HostPort& to) const {
  std::lock_guard lock(m_mutex);
  auto it = m_direct.find(to.to_string());
  return it == m_direct.end() ? nullptr : it->second;
}

bool PeerClient::has_direct(const HostPort& to) const {
  std::lock_guard lock(m_mutex);
  return m_direct.contains(to.to_string());
}

std::vector<PeerClient::BrokenDirect> PeerClient::prune_direct() {
  std::lock_guard lock(m_mutex);
  // Channels over a descriptor have no connectivity state to ask (gRPC
  // says SHUTDOWN for any channel without a client_channel filter): a
  // failed call tells, and the node's health pings make one often enough.
  std::vector<BrokenDirect> broken = std::move(m_direct_broken);
  m_direct_broken.clear();
  return broken;
}

void PeerClient::punch_offer(const HostPort& to, std::uint64_t punch_id, const HostPort& our_addr,
                             std::chrono::milliseconds timeout, std::function<void(Result<PunchAnswer>)> done) {
  proto::PunchOfferRequest request;
  request.set_node_id(std::string(m_self.bytes().begin(), m_self.bytes().end()));
  request.set_punch_id(punch_id);
  request.set_addr(our_addr.to_string());
  simple_unary<proto::PunchOfferRequest, proto::PunchOfferReply>(
      to, std::move(request), timeout,
      [](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& context,
         const proto::PunchOfferRequest& req, proto::PunchOfferReply& reply,
         std::function<void(grpc::Status)> on_done) {
        std::shared_ptr<proto::Peer::Stub> stub = proto::Peer::NewStub(channel);
        stub->async()->PunchOffer(&context, &req, &reply, std::move(on_done));
        return std::shared_ptr<void>(stub);
      },
      [to, done = std::move(done)](Result<proto::PunchOfferReply> reply) {
        if (!reply) return done(reply.error());
        auto addr = parse_host_port(reply->addr(), false);
        if (!addr || addr->port == 0 || !is_ip_literal(addr->host)) {
          return done(make_error(ErrorCode::corrupt, "{} answered a punch with an address that is not IP:PORT",
                                 to.to_string()));
        }
        done(PunchAnswer{*addr, reply->prepare_ms()});
      });
}

void PeerClient::punch_go(const HostPort& to, std::uint64_t punch_id, std::chrono::milliseconds timeout,
                          std::function<void(Result<void>)> done) {
  proto::PunchGoRequest request;
  request.set_node_id(std::string(m_self.bytes().begin(), m_self.bytes().end()));
  request.set_punch_id(punch_id);
  simple_unary<proto::PunchGoRequest, proto::PunchGoReply>(
      to, std::move(request), timeout,
      [](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& context, const proto::PunchGoRequest& req,
         proto::PunchGoReply& reply, std::function<void(grpc::Status)> on_done) {
        std::shared_ptr<proto::Peer::Stub> stub = proto::Peer::NewStub(channel);
        stub->async()->PunchGo(&context, &req, &reply, std::move(on_done));
        return std::shared_ptr<void>(stub);
      },
      [done = std::move(done)](Result<proto::PunchGoReply> reply) {
        if (!reply) return done(reply.error());
        done({});
      });
}

void PeerClient::chord_call(const HostPort& to, const proto::ChordRequest& request, std::chrono::milliseconds timeout,
                            std::function<void(Result<proto::ChordReply>)> done, const std::string& stamp) {
  struct Call {
    grpc::ClientContext context;
    proto::ChordRequest request;
    proto::ChordReply reply;
    std::unique_ptr<proto::Chord::Stub> stub;
    void start(const std::shared_ptr<grpc::Channel>& channel, std::function<void(grpc::Status)> on_done) {
      stub = proto::Chord::NewStub(channel);
      stub->async()->Call(&context, &request, &reply, std::move(on_done));
    }
  };
  auto call = std::make_shared<Call>();
  call->request = request;
  if (!stamp.empty()) call->context.AddMetadata(std::string(trace::kTraceMetadataKey), stamp);
  const bool checked_by_handshake = has_direct(to);
  unary<proto::ChordReply>(
      to, timeout, call,
      [call, to, checked_by_handshake, &transport = m_transport](const grpc::Status& status) {
        if (!status.ok()) return Result<proto::ChordReply>(from_status(to, status));
        // The answerer's id goes into the ring: it must be the one its key proves.
        const auto& id = call->reply.node_id();
        auto answerer = NodeId::from_bytes(std::span(reinterpret_cast<const std::uint8_t*>(id.data()), id.size()));
        if (answerer && !checked_by_handshake) {
          if (auto wrong = not_proven(transport, to, *answerer)) return Result<proto::ChordReply>(*wrong);
        }
        return Result<proto::ChordReply>(std::move(call->reply));
      },
      std::move(done));
}

void PeerClient::raft_step(const HostPort& to, const proto::RaftMessage& message, std::chrono::milliseconds timeout,
                           std::function<void(Result<void>)> done, const std::string& stamp) {
  struct Call {
    grpc::ClientContext context;
    proto::RaftMessage request;
    proto::RaftAck reply;
    std::unique_ptr<proto::Raft::Stub> stub;
    void start(const std::shared_ptr<grpc::Channel>& channel, std::function<void(grpc::Status)> on_done) {
      stub = proto::Raft::NewStub(channel);
      stub->async()->Step(&context, &request, &reply, std::move(on_done));
    }
  };
  auto call = std::make_shared<Call>();
  call->request = message;
  if (!stamp.empty()) call->context.AddMetadata(std::string(trace::kTraceMetadataKey), stamp);
  unary<bool>(
      to, timeout, call,
      [to](const grpc::Status& status) {
        return status.ok() ? Result<bool>(true) : Result<bool>(from_status(to, status));
      },
      [done = std::move(done)](Result<bool> result) {
        if (!done) return;
        if (result) {
          done({});
        } else {
          done(result.error());
        }
      });
}

template <class Request, class Reply, class Issue>
void PeerClient::simple_unary(const HostPort& to, Request request, std::chrono::milliseconds timeout, Issue /*issue*/,
                              std::function<void(Result<Reply>)> done, const std::string& stamp) {
  struct Call {
    grpc::ClientContext context;
    Request request;
    Reply reply;
    std::shared_ptr<void> stub;  // owns the stub for as long as the call runs
    void start(const std::shared_ptr<grpc::Channel>& channel, std::function<void(grpc::Status)> on_done) {
      // A captureless lambda: default-constructible (C++20).
      stub = Issue{}(channel, context, request, reply, std::move(on_done));
    }
  };
  static_assert(std::is_empty_v<Issue>, "issue must capture nothing");
  auto call = std::make_shared<Call>();
  call->request = std::move(request);
  // A send the caller recorded: its stamp, not the interceptor's plain one.
  if (!stamp.empty()) call->context.AddMetadata(std::string(trace::kTraceMetadataKey), stamp);
  unary<Reply>(
      to, timeout, call,
      [call, to](const grpc::Status& status) {
        return status.ok() ? Result<Reply>(std::move(call->reply)) : Result<Reply>(from_status(to, status));
      },
      std::move(done));
}

void PeerClient::dial_back(const HostPort& to, std::uint16_t port, std::chrono::milliseconds timeout,
                           std::function<void(Result<DialBackResult>)> done) {
  proto::DialBackRequest request;
  request.set_node_id(std::string(m_self.bytes().begin(), m_self.bytes().end()));
  request.set_port(port);
  simple_unary<proto::DialBackRequest, proto::DialBackReply>(
      to, std::move(request), timeout,
      [](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& context, const proto::DialBackRequest& req,
         proto::DialBackReply& reply, std::function<void(grpc::Status)> on_done) {
        std::shared_ptr<proto::Peer::Stub> stub = proto::Peer::NewStub(channel);
        stub->async()->DialBack(&context, &req, &reply, std::move(on_done));
        return std::shared_ptr<void>(stub);
      },
      [done = std::move(done)](Result<proto::DialBackReply> reply) {
        if (!reply) return done(reply.error());
        constexpr std::size_t kMaxText = 512;  // a peer's words, bounded
        done(DialBackResult{reply->reached(), reply->dialed_addr().substr(0, kMaxText),
                            reply->error().substr(0, kMaxText)});
      });
}

void PeerClient::reserve_relay(const HostPort& to, std::chrono::milliseconds timeout,
                               std::function<void(Result<RelayReservation>)> done) {
  proto::ReserveRequest request;
  request.set_node_id(std::string(m_self.bytes().begin(), m_self.bytes().end()));
  simple_unary<proto::ReserveRequest, proto::ReserveReply>(
      to, std::move(request), timeout,
      [](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& context, const proto::ReserveRequest& req,
         proto::ReserveReply& reply, std::function<void(grpc::Status)> on_done) {
        std::shared_ptr<proto::Peer::Stub> stub = proto::Peer::NewStub(channel);
        stub->async()->Reserve(&context, &req, &reply, std::move(on_done));
        return std::shared_ptr<void>(stub);
      },
      [to, done = std::move(done)](Result<proto::ReserveReply> reply) {
        if (!reply) return done(reply.error());
        auto addr = parse_host_port(reply->addr(), false);
        if (!addr || addr->port == 0) {
          return done(
              make_error(ErrorCode::corrupt, "{} granted a relay address that is not HOST:PORT", to.to_string()));
        }
        if (reply->secret().size() != kRelaySecretBytes) {
          return done(make_error(ErrorCode::corrupt, "{} granted a relay secret of {} bytes, expected {}",
                                 to.to_string(), reply->secret().size(), kRelaySecretBytes));
        }
        done(RelayReservation{*addr, reply->secret()});
      });
}

void PeerClient::blob_put(const HostPort& to, const proto::BlobPut& put, std::chrono::milliseconds timeout,
                          std::function<void(Result<void>)> done) {
  simple_unary<proto::BlobPut, proto::BlobPutReply>(
      to, put, timeout,
      [](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& context, const proto::BlobPut& request,
         proto::BlobPutReply& reply, std::function<void(grpc::Status)> on_done) {
        std::shared_ptr<proto::Blobs::Stub> stub = proto::Blobs::NewStub(channel);
        stub->async()->Put(&context, &request, &reply, std::move(on_done));
        return std::shared_ptr<void>(stub);
      },
      [done = std::move(done)](Result<proto::BlobPutReply> reply) {
        if (reply) return done({});
        done(reply.error());
      });
}

void PeerClient::blob_get(const HostPort& to, std::string id, std::chrono::milliseconds timeout,
                          std::function<void(Result<proto::BlobGetReply>)> done) {
  proto::BlobGet request;
  request.set_id(std::move(id));
  simple_unary<proto::BlobGet, proto::BlobGetReply>(
      to, std::move(request), timeout,
      [](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& context, const proto::BlobGet& req,
         proto::BlobGetReply& reply, std::function<void(grpc::Status)> on_done) {
        std::shared_ptr<proto::Blobs::Stub> stub = proto::Blobs::NewStub(channel);
        stub->async()->Get(&context, &req, &reply, std::move(on_done));
        return std::shared_ptr<void>(stub);
      },
      std::move(done));
}

void PeerClient::job_propose(const HostPort& to, const proto::JobProposal& proposal, std::chrono::milliseconds timeout,
                             std::function<void(Result<proto::JobProposalReply>)> done, const std::string& stamp) {
  simple_unary<proto::JobProposal, proto::JobProposalReply>(
      to, proposal, timeout,
      [](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& context, const proto::JobProposal& req,
         proto::JobProposalReply& reply, std::function<void(grpc::Status)> on_done) {
        std::shared_ptr<proto::Jobs::Stub> stub = proto::Jobs::NewStub(channel);
        stub->async()->Propose(&context, &req, &reply, std::move(on_done));
        return std::shared_ptr<void>(stub);
      },
      std::move(done), stamp);
}

void PeerClient::job_heartbeat(const HostPort& to, const proto::WorkerHeartbeat& heartbeat,
                               std::chrono::milliseconds timeout,
                               std::function<void(Result<proto::WorkerHeartbeatReply>)> done) {
  simple_unary<proto::WorkerHeartbeat, proto::WorkerHeartbeatReply>(
      to, heartbeat, timeout,
      [](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& context, const proto::WorkerHeartbeat& req,
         proto::WorkerHeartbeatReply& reply, std::function<void(grpc::Status)> on_done) {
        std::shared_ptr<proto::Jobs::Stub> stub = proto::Jobs::NewStub(channel);
        stub->async()->Heartbeat(&context, &req, &reply, std::move(on_done));
        return std::shared_ptr<void>(stub);
      },
      std::move(done));
}

void PeerClient::shard_report(const HostPort& to, const proto::ShardReport& report, std::chrono::milliseconds timeout,
                              std::function<void(Result<proto::ShardReportReply>)> done, const std::string& stamp) {
  simple_unary<proto::ShardReport, proto::ShardReportReply>(
      to, report, timeout,
      [](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& context, const proto::ShardReport& req,
         proto::ShardReportReply& reply, std::function<void(grpc::Status)> on_done) {
        std::shared_ptr<proto::Jobs::Stub> stub = proto::Jobs::NewStub(channel);
        stub->async()->ReportShard(&context, &req, &reply, std::move(on_done));
        return std::shared_ptr<void>(stub);
      },
      std::move(done), stamp);
}

void PeerClient::trace_events(const HostPort& to, const proto::TraceQuery& query, std::chrono::milliseconds timeout,
                              std::function<void(Result<proto::TraceEvents>)> done) {
  simple_unary<proto::TraceQuery, proto::TraceEvents>(
      to, query, timeout,
      [](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& context, const proto::TraceQuery& req,
         proto::TraceEvents& reply, std::function<void(grpc::Status)> on_done) {
        std::shared_ptr<proto::Trace::Stub> stub = proto::Trace::NewStub(channel);
        stub->async()->Events(&context, &req, &reply, std::move(on_done));
        return std::shared_ptr<void>(stub);
      },
      std::move(done));
}

void PeerClient::shutdown() {
  std::unique_lock lock(m_mutex);
  m_closed = true;
  for (auto* context : m_in_flight) context->TryCancel();
  m_idle.wait(lock, [this] { return m_in_flight.empty(); });
  m_channels.clear();
  m_direct.clear();  // punched connections close now, not when the node is freed
  m_retired.clear();
}

std::size_t PeerClient::channel_count() const {
  std::lock_guard lock(m_mutex);
  return m_channels.size();
}

}  // namespace p2pd::net
