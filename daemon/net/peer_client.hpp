#pragma once
// Outbound peer RPCs. Calls start on the node's io thread; gRPC completes
// them on its own threads, and the result is handed back through `post` so
// the node sees it on the io thread again (DESIGN.md, "Threading"). Every
// call has a deadline and every reply is validated before it is believed.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/host_port.hpp"
#include "common/node_id.hpp"
#include "common/result.hpp"

namespace grpc {
class Channel;
class ChannelArguments;
class ClientContext;
class Status;
}  // namespace grpc

namespace p2pd::proto {
class ChordRequest;
class ChordReply;
class RaftMessage;
class BlobPut;
class BlobGetReply;
class JobProposal;
class JobProposalReply;
class WorkerHeartbeat;
class WorkerHeartbeatReply;
class ShardReport;
class ShardReportReply;
class TraceQuery;
class TraceEvents;
}  // namespace p2pd::proto

namespace p2pd::trace {
class Tracer;
}  // namespace p2pd::trace

namespace p2pd::tls {
class SecureTransport;
}  // namespace p2pd::tls

namespace p2pd::net {

struct PingResult {
  NodeId node_id;
  std::string version;
  std::optional<HostPort> observed;  // how the peer sees us, when it said
  std::string reachability;          // the peer's own, "public" or "private"; empty: it did not say
};

struct RelayReservation {
  HostPort addr;       // where peers call us through the relay
  std::string secret;  // kRelaySecretBytes bytes, for the control connection
};
inline constexpr std::size_t kRelaySecretBytes = 16;

struct PunchAnswer {
  HostPort addr;                 // where the peer's punch port is seen
  std::uint32_t prepare_ms = 0;  // how long the peer took to learn it
};

struct DialBackResult {
  bool reached = false;
  std::string dialed_addr;  // where the peer dialled
  std::string error;        // why it did not reach us
};

class PeerClient {
 public:
  // Runs a closure on the node's io thread.
  using Post = std::function<void(std::function<void()>)>;

  // Calls go over `transport` (TLS; it must outlive the client). `tracer`
  // (may be null) stamps every outgoing call with this node's clocks.
  PeerClient(NodeId self, Post post, tls::SecureTransport& transport, trace::Tracer* tracer = nullptr);
  ~PeerClient();
  PeerClient(const PeerClient&) = delete;
  PeerClient& operator=(const PeerClient&) = delete;

  // `done` runs once, through `post`, unless the client is shut down first.
  void ping(const HostPort& to, std::chrono::milliseconds timeout, std::function<void(Result<PingResult>)> done);
  // Asks the peer at `to` to dial us back at our IP as it sees it and
  // `port` (reachability, peer.proto DialBack).
  void dial_back(const HostPort& to, std::uint16_t port, std::chrono::milliseconds timeout,
                 std::function<void(Result<DialBackResult>)> done);
  // Asks the peer at `to` to relay for us (peer.proto Reserve).
  void reserve_relay(const HostPort& to, std::chrono::milliseconds timeout,
                     std::function<void(Result<RelayReservation>)> done);
  // Hole punching (peer.proto, PunchOffer / PunchGo), sent to the peer's
  // announced (relayed) address.
  void punch_offer(const HostPort& to, std::uint64_t punch_id, const HostPort& our_addr,
                   std::chrono::milliseconds timeout, std::function<void(Result<PunchAnswer>)> done);
  void punch_go(const HostPort& to, std::uint64_t punch_id, std::chrono::milliseconds timeout,
                std::function<void(Result<void>)> done);

  // Connections we made ourselves (a punched socket, or one from a punch
  // port to a public peer): after the TLS handshake (in which the peer must
  // prove `expected`, when given) gRPC runs over `fd` (connected,
  // non-blocking; ownership passes here) until it breaks, and never
  // reconnects. `done` runs once, through `post`.
  using DirectChannel = std::shared_ptr<grpc::Channel>;
  void channel_over(int fd, const HostPort& to, std::optional<NodeId> expected,
                    std::function<void(Result<DirectChannel>)> done);
  // A Ping on such a channel: who answers on it, and how it sees us.
  void ping_over(const DirectChannel& channel, const HostPort& to, std::chrono::milliseconds timeout,
                 std::function<void(Result<PingResult>)> done);
  // From now on calls to `to` (a peer's announced address) go over
  // `channel` instead of a connection to `to`: the connection manager's
  // choice of a punched path over the relay. Until it breaks or is dropped.
  void use_direct(const HostPort& to, DirectChannel channel);
  bool drop_direct(const HostPort& to);
  [[nodiscard]] bool has_direct(const HostPort& to) const;
  [[nodiscard]] DirectChannel direct_channel(const HostPort& to) const;
  [[nodiscard]] std::vector<HostPort> direct_peers() const;
  // Calls made over direct channels (not counting pings on them), since start.
  [[nodiscard]] std::uint64_t direct_calls() const;
  // The direct channels that broke since the last call (a call on one
  // failed UNAVAILABLE; it is forgotten then), whose and why: calls to them
  // go to the announced address again.
  struct BrokenDirect {
    HostPort peer;
    std::string why;
  };
  std::vector<BrokenDirect> prune_direct();

  // One Chord message (service Chord, method Call); `done` as for ping.
  // `stamp`, here and below: the trace stamp of a send the caller recorded
  // (Tracer::on_send with a name), sent instead of the plain one.
  void chord_call(const HostPort& to, const proto::ChordRequest& request, std::chrono::milliseconds timeout,
                  std::function<void(Result<proto::ChordReply>)> done, const std::string& stamp = {});

  // One Raft message (service Raft, method Step), one-way: `done` says only
  // whether it was delivered.
  void raft_step(const HostPort& to, const proto::RaftMessage& message, std::chrono::milliseconds timeout,
                 std::function<void(Result<void>)> done, const std::string& stamp = {});

  // Blobs (service Blobs): store one at a holder, fetch one from a holder
  // (the reply is checked by the caller, which knows the id it asked for).
  void blob_put(const HostPort& to, const proto::BlobPut& put, std::chrono::milliseconds timeout,
                std::function<void(Result<void>)> done);
  void blob_get(const HostPort& to, std::string id, std::chrono::milliseconds timeout,
                std::function<void(Result<proto::BlobGetReply>)> done);

  // Jobs (service Jobs): to the Raft leader. `stamp`: the trace stamp of a
  // send the caller recorded (Tracer::on_send); empty, the plain one.
  void job_propose(const HostPort& to, const proto::JobProposal& proposal, std::chrono::milliseconds timeout,
                   std::function<void(Result<proto::JobProposalReply>)> done, const std::string& stamp = {});
  void job_heartbeat(const HostPort& to, const proto::WorkerHeartbeat& heartbeat, std::chrono::milliseconds timeout,
                     std::function<void(Result<proto::WorkerHeartbeatReply>)> done);
  void shard_report(const HostPort& to, const proto::ShardReport& report, std::chrono::milliseconds timeout,
                    std::function<void(Result<proto::ShardReportReply>)> done, const std::string& stamp = {});

  // Trace (service Trace): a peer's recorded events.
  void trace_events(const HostPort& to, const proto::TraceQuery& query, std::chrono::milliseconds timeout,
                    std::function<void(Result<proto::TraceEvents>)> done);

  // Cancels calls in flight and waits for gRPC to finish with them; later
  // calls fail at once. Idempotent.
  void shutdown();

  // Channels kept open; bounded by kMaxChannels.
  [[nodiscard]] std::size_t channel_count() const;

  static constexpr std::size_t kMaxChannels = 256;
  // Calls in flight at once; more fail at once (bounded memory when peers stall).
  static constexpr std::size_t kMaxCallsInFlight = 4096;

 private:
  std::shared_ptr<grpc::Channel> channel_for(const HostPort& to);
  // Ping and ping_over: `over` null, the channel for `to`.
  void ping_on(const HostPort& to, DirectChannel over, std::chrono::milliseconds timeout,
               std::function<void(Result<PingResult>)> done);
  grpc::ChannelArguments channel_arguments() const;
  // The common part of every unary call: deadline, bookkeeping for
  // shutdown, and the result posted to the io thread. `start` issues the
  // call on the given channel and context; `finish` turns its status into a result.
  // `over`: this channel rather than the one for `to`.
  template <class Reply, class Call>
  void unary(const HostPort& to, std::chrono::milliseconds timeout, std::shared_ptr<Call> call,
             std::function<Result<Reply>(const grpc::Status&)> finish, std::function<void(Result<Reply>)> done,
             DirectChannel over = nullptr);

  // A unary call of any service: `issue` starts it on a stub it creates.
  template <class Request, class Reply, class Issue>
  void simple_unary(const HostPort& to, Request request, std::chrono::milliseconds timeout, Issue issue,
                    std::function<void(Result<Reply>)> done, const std::string& stamp = {});

  NodeId m_self;
  Post m_post;
  tls::SecureTransport& m_transport;
  trace::Tracer* m_tracer;
  std::vector<std::shared_ptr<void>> m_retired;  // calls finished after shutdown, freed by it
  mutable std::mutex m_mutex;
  std::condition_variable m_idle;
  std::map<std::string, std::shared_ptr<grpc::Channel>> m_channels;
  std::map<std::string, DirectChannel> m_direct;  // announced address -> punched channel
  std::vector<BrokenDirect> m_direct_broken;      // dropped since the last prune_direct
  std::uint64_t m_direct_calls = 0;
  std::set<grpc::ClientContext*> m_in_flight;
  bool m_closed = false;
};

}  // namespace p2pd::net
