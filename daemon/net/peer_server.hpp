#pragma once
// The peer RPC endpoint on --listen (TCP). It answers Ping itself (who is at
// this address, and where the caller is seen from) and hands every Chord
// and Raft message, decoded and validated, to the node's handlers.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/host_port.hpp"
#include "common/node_id.hpp"
#include "common/result.hpp"
#include "daemon/net/call_rates.hpp"
#include "daemon/net/chord_codec.hpp"
#include "daemon/net/connection_limits.hpp"
#include "daemon/net/jobs_codec.hpp"
#include "daemon/net/peer_listener.hpp"
#include "daemon/net/peer_scores.hpp"
#include "daemon/net/raft_codec.hpp"

namespace grpc {
class Server;
}  // namespace grpc

namespace p2pd::tls {
class SecureTransport;
}  // namespace p2pd::tls

namespace p2pd::trace {
class Recorder;
class Tracer;
}  // namespace p2pd::trace

namespace p2pd::net {

class PeerService;
struct PeerSelfState;
class ChordService;
class RaftService;
class BlobService;
class JobsService;
class TraceService;
class CallGate;

// What the peer server needs from the node.
class ChordHandler {
 public:
  virtual ~ChordHandler() = default;
  // `done` runs exactly once, on the node's io thread, with the core's reply
  // (nullopt for a one-way message).
  virtual void on_chord_message(ChordInbound inbound, std::function<void(std::optional<chord::Message>)> done) = 0;
};

class RaftHandler {
 public:
  virtual ~RaftHandler() = default;
  // One-way: called on a gRPC thread; the node posts it to its io thread.
  virtual void on_raft_message(RaftInbound inbound) = 0;
};

// Blobs held by this node. Called on gRPC threads; `done` runs once, on any thread.
class BlobHandler {
 public:
  virtual ~BlobHandler() = default;
  // `id` is 32 bytes; the handler checks that `data` hashes to it.
  virtual void on_blob_put(BlobPutIn put, std::function<void(Result<void>)> done) = 0;
  // nullopt: not held here.
  virtual void on_blob_get(std::string id, std::function<void(Result<std::optional<std::string>>)> done) = 0;
};

struct ProposalAnswer {
  bool accepted = false;
  std::string error;
  std::optional<NodeId> leader;
};

// What workers and submitters tell the leader. Called on gRPC threads;
// `done` runs once, on any thread.
class JobsHandler {
 public:
  virtual ~JobsHandler() = default;
  virtual void on_job_proposal(JobProposalIn proposal, std::function<void(ProposalAnswer)> done) = 0;
  // `done(true)` while this node leads.
  virtual void on_worker_heartbeat(WorkerHeartbeatIn heartbeat, std::function<void(bool)> done) = 0;
  virtual void on_shard_report(ShardReportIn report, std::function<void(Result<void>)> done) = 0;
};

// An unreachable peer asks for a relay port (peer.proto, Peer.Reserve).
struct RelayGrant {
  std::string addr;    // HOST:PORT peers call to reach the caller
  std::string secret;  // relay::kSecretBytes bytes
};
// A peer that reaches us through a relay offers a direct connection
// (peer.proto, Peer.PunchOffer / PunchGo).
struct PunchOfferIn {
  NodeId caller;
  std::uint64_t punch_id = 0;
  HostPort addr;  // an IP address: where the caller's punch port is seen
};
struct PunchAnswerOut {
  HostPort addr;  // where our punch port is seen
  std::uint32_t prepare_ms = 0;
};
// Getting through NATs: what peers ask of this node.
class ConnectivityHandler {
 public:
  virtual ~ConnectivityHandler() = default;
  // Called on gRPC threads; each `done` runs once, on any thread.
  // `caller_ip`: where the request came from.
  virtual void on_relay_reserve(const NodeId& caller, const std::string& caller_ip,
                                std::function<void(Result<RelayGrant>)> done) = 0;
  virtual void on_punch_offer(PunchOfferIn offer, std::function<void(Result<PunchAnswerOut>)> done) = 0;
  virtual void on_punch_go(const NodeId& caller, std::uint64_t punch_id, std::function<void(Result<void>)> done) = 0;
};

// Bounded input: no single peer message may exceed this (DESIGN.md, "every
// peer input is validated with size limits").
inline constexpr int kMaxPeerMessageBytes = 4 << 20;
// Connection limits on the peer port (see PeerServer::start).
inline constexpr std::chrono::milliseconds kPeerIdleTimeout{5 * 60'000};
inline constexpr int kMaxPeerStreams = 128;
// A trace reply holds at most this many events, and stops past this many bytes.
inline constexpr std::size_t kMaxTraceEventsPerReply = 10000;
inline constexpr std::size_t kMaxTraceReplyBytes = 3u << 20;

// `tracer` (may be null) is given every incoming call's clock stamp; with a
// `recorder`, peers may read this node's trace (service Trace).
class PeerServer {
 public:
  // Peers are served over `transport` (TLS), which must outlive the server.
  static Result<std::unique_ptr<PeerServer>> start(const HostPort& listen, tls::SecureTransport& transport,
                                                   const std::string& executor, ChordHandler& chord, RaftHandler& raft,
                                                   BlobHandler& blobs, JobsHandler& jobs,
                                                   ConnectivityHandler& connectivity, ConnectionCaps caps = {},
                                                   CallRateRules rates = {}, trace::Tracer* tracer = nullptr,
                                                   trace::Recorder* recorder = nullptr);
  ~PeerServer();
  PeerServer(const PeerServer&) = delete;
  PeerServer& operator=(const PeerServer&) = delete;

  // The address actually bound (port 0 resolved).
  [[nodiscard]] const HostPort& bound() const { return m_bound; }
  void shutdown(std::chrono::milliseconds grace);

  // Serves gRPC on a connection we did not accept (a relayed caller's leg,
  // or a punched socket), after the TLS handshake, in which the caller
  // must prove `expected` when given: connected, non-blocking; the server
  // owns `fd`.
  void add_connection(int fd, std::optional<NodeId> expected = std::nullopt);
  // What this node says of itself: its reachability in Ping replies, and
  // whether peers reach it through a relay, in Chord replies.
  void set_reachability(std::string reachability);
  void set_relayed(bool relayed);

 private:
  struct Intake;
  PeerServer() = default;
  // A connection the listener admitted comes with `admitted`, for the
  // transport to watch.
  void secure(int fd, std::optional<HostPort> accepted_from, std::optional<NodeId> expected,
              std::optional<PeerListener::Admitted> admitted);
  tls::SecureTransport* m_transport = nullptr;
  std::shared_ptr<Intake> m_intake;  // before the services, which read its connections
  std::shared_ptr<PeerSelfState> m_self_state;
  HostPort m_bound;
  std::unique_ptr<PeerService> m_service;
  std::unique_ptr<ChordService> m_chord;
  std::unique_ptr<RaftService> m_raft;
  std::unique_ptr<BlobService> m_blobs;
  std::unique_ptr<JobsService> m_jobs;
  std::unique_ptr<TraceService> m_trace;
  std::unique_ptr<PeerScores> m_scores;  // outlives the server and the listener
  std::unique_ptr<CallGate> m_gate;      // outlives the server
  std::unique_ptr<PeerListener> m_listener;
  std::unique_ptr<grpc::Server> m_server;
};

}  // namespace p2pd::net
