#pragma once
// The driver (DESIGN.md, daemon/node): one Asio io_context thread owns every
// piece of protocol state, one message at a time, no locks. A tick timer
// drives the sans-IO cores; gRPC handlers post onto the io thread and finish
// when it answers; signals arrive as io events too.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/result.hpp"
#include "common/rng.hpp"
#include "daemon/chord/overlay.hpp"
#include "daemon/control/control_handler.hpp"
#include "daemon/exec/backend.hpp"
#include "daemon/exec/executor_select.hpp"
#include "daemon/nat/observed_addresses.hpp"
#include "daemon/nat/port_mapper.hpp"
#include "daemon/nat/punch_planner.hpp"
#include "daemon/nat/reachability.hpp"
#include "daemon/nat/stun_client.hpp"
#include "daemon/net/bootstrap_probe.hpp"
#include "daemon/net/peer_client.hpp"
#include "daemon/net/peer_server.hpp"
#include "daemon/node/blob_transfer.hpp"
#include "daemon/node/config.hpp"
#include "daemon/node/identity.hpp"
#include "daemon/node/service_notifier.hpp"
#include "daemon/raft/raft.hpp"
#include "daemon/raft/storage.hpp"
#include "daemon/raft/voter_policy.hpp"
#include "daemon/relay/relay_link.hpp"
#include "daemon/relay/relay_server.hpp"
#include "daemon/sched/job_table.hpp"
#include "daemon/sched/scheduler.hpp"
#include "daemon/store/blob_store.hpp"
#include "daemon/store/matrix_cache.hpp"
#include "daemon/tls/secure_transport.hpp"
#include "daemon/trace/recorder.hpp"
#include "daemon/trace/tracer.hpp"

namespace p2pd::control {
class ControlServer;
}

namespace p2pd::node {

// One tick of the cores' logical time. Protocol timeouts are counted in ticks
// (STYLE.md); 50 ms keeps an idle daemon at 20 wake-ups a second.
inline constexpr std::chrono::milliseconds kTickInterval{50};
// A bootstrap peer that does not answer a ping within this is retried later.
inline constexpr std::chrono::milliseconds kBootstrapPingTimeout{3000};
// How long calls in flight may finish at shutdown before they are cancelled.
inline constexpr std::chrono::milliseconds kShutdownGrace{2000};
// A shard's computed output the ring could not store: tried again after 1,
// 2, 4 and 8 s (a fault of a few seconds passes), then the try fails.
inline constexpr std::uint32_t kStoreOutputRetries = 4;
inline constexpr std::chrono::milliseconds kStoreOutputBackoff{1000};
// At shutdown, how long a port mapping gateway may take to finish the call
// in flight, and then to remove the mapping.
inline constexpr std::chrono::milliseconds kGatewayShutdownWait{5000};
// Deadline of one Chord RPC; the core's own timeouts (in ticks) decide what
// a missing answer means.
inline constexpr std::chrono::milliseconds kChordCallTimeout{2000};
// A graceful departure waits this long at most for its hand-over to be sent.
inline constexpr std::chrono::milliseconds kLeaveTimeout{5000};
// Peers remembered for `p2pctl peers` (the least recently seen go first).
inline constexpr std::size_t kMaxPeersRemembered = 1024;
// Deadline of one Raft message; Raft retries by itself (heartbeats).
inline constexpr std::chrono::milliseconds kRaftCallTimeout{1000};
// Raft messages in flight at once; more are dropped (Raft tolerates loss).
inline constexpr std::size_t kMaxRaftCallsInFlight = 1024;
// Learners: peers heard from within this are replicated to, at most this many.
inline constexpr std::chrono::seconds kLearnerFreshness{60};
// How often the STATUS= line systemd shows is brought up to date (1 s).
inline constexpr std::uint64_t kServiceStatusTicks = 20;
inline constexpr std::size_t kMaxLearners = 64;
// Connectivity. Peers are asked where they see us from every minute while
// fewer than kWantedObservers report; a dial-back request waits for the
// helper's own dial (net::DialBacker::kDialTimeout) and a margin.
inline constexpr std::uint64_t kObservationTicks = 60 * 20;
inline constexpr std::size_t kWantedObservers = 4;
inline constexpr std::chrono::milliseconds kDialBackCallTimeout{6000};
// Joining waits this long at most for a reachability verdict (a dial-back
// round: kDialBackCallTimeout and a margin), and an unreachable node this
// long at most for a relay, before it joins with what it has.
inline constexpr std::uint64_t kJoinVerdictWaitTicks = 15 * 20;
inline constexpr std::uint64_t kJoinRelayWaitTicks = 30 * 20;
// A relay reservation is asked for with this deadline, and retried after
// 1 s, doubling to at most a minute.
inline constexpr std::chrono::milliseconds kRelayReserveTimeout{5000};
inline constexpr std::uint64_t kRelayRetryTicks = 20;
inline constexpr std::uint64_t kRelayMaxRetryTicks = 60 * 20;
// Hole punching (node_punch.cpp): each step's deadline; how long a peer's
// offer waits for its go; punched peers at most; p2pctl punch's wait.
inline constexpr std::chrono::milliseconds kPunchConnectTimeout{5000};
inline constexpr std::chrono::milliseconds kPunchPingTimeout{3000};
inline constexpr std::chrono::milliseconds kPunchOfferTimeout{10000};
inline constexpr std::chrono::seconds kPunchResponseLifetime{15};
inline constexpr std::size_t kMaxPunchedPeers = 32;
inline constexpr std::size_t kMaxPunchResponses = 4;
inline constexpr std::chrono::seconds kPunchOfferWindow{10};
inline constexpr std::size_t kMaxPunchOffersPerWindow = 64;
inline constexpr std::size_t kMaxPunchWaiters = 16;
inline constexpr std::chrono::seconds kPunchWaitLimit{90};
inline constexpr std::uint64_t kPunchTickEvery = 20;
inline constexpr std::uint64_t kPunchHealthTicks = 15 * 20;
// A Raft peer that cannot be reached is looked up in the ring (its own id
// leads to it) at most this often, with at most so many lookups at once.
inline constexpr std::chrono::milliseconds kRaftResolveInterval{1000};
inline constexpr std::size_t kMaxRaftResolvesInFlight = 8;
// Jobs. A worker tells the leader it is alive this often (the scheduler
// re-runs a silent worker's shards after 5 s), and repeats an unanswered
// shard report this often.
inline constexpr std::chrono::milliseconds kWorkerHeartbeatInterval{1000};
inline constexpr std::chrono::milliseconds kShardReportInterval{2000};
inline constexpr std::chrono::milliseconds kJobCallTimeout{5000};
// A submitted job must be committed within this, or the submission fails.
inline constexpr std::chrono::seconds kSubmitCommitTimeout{30};
inline constexpr std::chrono::milliseconds kProposalRetryInterval{2000};
// Chunks of one submission being stored at once (each about 1 MiB).
inline constexpr std::size_t kSubmitWindow = 8;
inline constexpr std::size_t kMaxSubmissions = 8;
inline constexpr std::size_t kMaxResultStreams = 16;
inline constexpr std::size_t kMaxVerifications = 1024;
inline constexpr std::size_t kMaxConcurrentVerifications = 2;
// Blob puts and gets from peers served at once; more are refused, and the
// sender tries another holder or later.
inline constexpr std::size_t kMaxBlobRequestsInFlight = 64;
inline constexpr std::size_t kMaxJobWatchers = 256;
inline constexpr std::size_t kMaxPendingProposals = 256;
// Recently written or read chunks kept in memory (BlobStore), at most.
inline constexpr std::uint64_t kBlobMemoryBytes = std::uint64_t{256} << 20;
// Whole matrices kept in memory for the next step of a job on this node
// (MatrixCache), at most: A, B and C of a 8192x8192 job, or of several
// smaller ones.
inline constexpr std::uint64_t kMatrixMemoryBytes = std::uint64_t{768} << 20;
// Cached matrices unused this long are dropped, and recycled buffers idle
// this long are given back to the system, checked every kMemoryTrimTicks.
inline constexpr std::chrono::seconds kMatrixIdle{60};
inline constexpr std::chrono::seconds kBufferIdle{10};
inline constexpr std::uint64_t kMemoryTrimTicks = 20;
inline constexpr std::chrono::milliseconds kMaxJobWait{30000};

// Wall-clock milliseconds since the Unix epoch: the times job commands
// carry (the job table itself reads no clock).
inline std::uint64_t now_unix_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

class Node final : public control::ControlHandler,
                   public net::ChordHandler,
                   public net::RaftHandler,
                   public net::BlobHandler,
                   public net::JobsHandler,
                   public net::ConnectivityHandler {
 public:
  // `args` is the command line (without argv[0]), kept for SIGHUP reloads.
  Node(NodeConfig config, std::vector<std::string> args, NodeIdentity identity, exec::ExecutorInfo executor);
  ~Node() override;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Staged start-up: peer port, control socket, then the io thread.
  Result<void> start();
  // Blocks the calling thread until SIGTERM/SIGINT or request_stop().
  void wait_until_stop_requested();
  // Thread-safe.
  void request_stop();
  // Staged shutdown, reverse of start(): control socket, peer port, io thread.
  void shutdown();
  // After shutdown(): whether the node stopped on a fatal error (Raft state
  // that could not be persisted or restored) rather than on request.
  [[nodiscard]] bool failed() const { return m_raft_failed; }

  void get_status(std::function<void(control::NodeStatus)> done) override;
  void get_ring(std::function<void(control::RingView)> done) override;
  void get_peers(std::function<void(std::vector<control::PeerView>)> done) override;
  void lookup(std::string key, std::function<void(Result<control::LookupView>)> done) override;
  void put(std::string key, std::string value, std::function<void(Result<control::PutView>)> done) override;
  void get(std::string key, std::function<void(Result<control::GetView>)> done) override;
  void leave(std::function<void(Result<control::LeaveView>)> done) override;
  void get_leader(std::function<void(control::LeaderView)> done) override;
  void netcheck(std::function<void(control::NetcheckView)> done) override;
  void punch(std::string peer, std::function<void(Result<control::PunchView>)> done) override;

  void submit_begin(control::SubmitHeader header, std::function<void(Result<std::uint64_t>)> done) override;
  void submit_data(std::uint64_t submission, std::string data, std::function<void(Result<void>)> done) override;
  void submit_end(std::uint64_t submission, std::function<void(Result<control::SubmitView>)> done) override;
  void submit_abort(std::uint64_t submission) override;
  void list_jobs(std::function<void(std::vector<control::JobSummaryView>)> done) override;
  void get_job(std::string id, control::JobWait wait, std::function<void(Result<control::JobView>)> done) override;
  void cancel_job(std::string id, std::function<void(Result<control::JobView>)> done) override;
  void result_begin(std::string id, std::function<void(Result<control::ResultStreamView>)> done) override;
  void result_next(std::uint64_t stream, std::function<void(Result<std::optional<std::string>>)> done) override;
  void result_end(std::uint64_t stream) override;
  void trace(control::TraceQueryView query, std::function<void(Result<control::TraceView>)> done) override;

  void on_chord_message(net::ChordInbound inbound, std::function<void(std::optional<chord::Message>)> done) override;
  void on_raft_message(net::RaftInbound inbound) override;
  void on_blob_put(net::BlobPutIn put, std::function<void(Result<void>)> done) override;
  void on_blob_get(std::string id, std::function<void(Result<std::optional<std::string>>)> done) override;
  void on_job_proposal(net::JobProposalIn proposal, std::function<void(net::ProposalAnswer)> done) override;
  void on_worker_heartbeat(net::WorkerHeartbeatIn heartbeat, std::function<void(bool)> done) override;
  void on_shard_report(net::ShardReportIn report, std::function<void(Result<void>)> done) override;

 private:
  void schedule_tick();
  void on_tick();
  void wait_for_signal();
  void reload_config();
  void probe_bootstrap_peers();
  void on_bootstrap_reply(const HostPort& addr, Result<net::PingResult> reply);
  // systemd: READY=1 once in a pool, a STATUS= line a second, the watchdog.
  void update_service();
  [[nodiscard]] std::string service_status() const;
  control::NodeStatus snapshot() const;

  // node_chord.cpp: the Chord overlay bound to gRPC (io thread only).
  void start_chord();
  void pump_chord();
  void send_chord(chord::Outgoing out);
  // The trace's name for an outgoing Chord message, or empty when it is
  // routine (lookups, stabilization) and goes unrecorded.
  // Also remembers the successor notified, so later notifies go unrecorded.
  std::string traced_chord_send_name(const chord::Outgoing& out);
  void note_ring_changes();
  // Peers heard from within kLearnerFreshness (not counting this node).
  [[nodiscard]] std::size_t peers_heard_lately() const;
  // `relayed`: whether the peer said it is reached through a relay (unset: it did not say).
  void note_peer(const NodeId& id, const std::string& addr, const std::string& executor,
                 std::optional<bool> relayed = std::nullopt);
  void run_operation(std::uint64_t operation_id, std::function<void(chord::OperationResult)> done);
  void begin_leave(std::function<void(Result<control::LeaveView>)> done);
  void check_leave_done();

  // node_nat.cpp: STUN, observed addresses, reachability (io thread only).
  void start_nat();
  void tick_nat();
  void receive_stun();
  void resolve_stun(std::size_t server);
  void send_stun(std::size_t server, std::string bytes);
  void on_stun_datagram(std::size_t size);
  void on_stun_answer();
  [[nodiscard]] nat::NatMapping nat_mapping() const;
  [[nodiscard]] std::vector<HostPort> reachability_helpers() const;
  // The port peers call us at (from the announced address).
  [[nodiscard]] std::uint16_t advertised_port() const;
  void note_reachability();
  // Adopted observed addresses, with the advertised port.
  [[nodiscard]] std::vector<std::string> observed_addrs() const;

  // node_relay.cpp: relaying for others and being relayed (io thread only).
  void on_relay_reserve(const NodeId& caller, const std::string& caller_ip,
                        std::function<void(Result<net::RelayGrant>)> done) override;
  void start_relay();
  void tick_relay();
  void reserve_relay_at(const HostPort& peer);
  void on_relay_lost(std::string why);
  [[nodiscard]] std::vector<HostPort> relay_candidates() const;
  void note_peer_reachability(const HostPort& peer, const std::string& reachability);
  // Peers call us through a relay: our announced address is our allocation.
  [[nodiscard]] bool announced_through_relay() const;
  // Joins through the bootstrap peer that answered once this node knows how
  // peers reach it: directly, or (unreachable) through a relay it reserved.
  void maybe_join();
  // Before joining: peers will know this node at `addr`.
  void announce_as(std::string addr);

  // Port mapping (node_port_mapping.cpp).
  void start_port_mapping();
  void tick_port_mapping();
  void note_port_mapping();
  // At shutdown, after the io thread: removes from the router what the
  // gateway calls made, waiting for the gateway kGatewayShutdownWait at most.
  void stop_port_mapping();
  // Reachable through a port the router forwards (and announced there).
  [[nodiscard]] bool announced_through_mapping() const;

  // Hole punching (node_punch.cpp).
  struct PunchMapping {
    std::uint16_t local_port = 0;
    HostPort public_addr;                     // the port as a public peer sees it
    net::PeerClient::DirectChannel observer;  // holds the NAT's mapping open
  };
  struct PunchAttempt {
    std::uint64_t id = 0;
    HostPort peer;  // its announced (relayed) address
    NodeId peer_id;
    PunchMapping mapping;
    HostPort their_addr;
    std::uint32_t rtt_ms = 0;
    std::chrono::steady_clock::time_point started;
  };
  struct PunchResponse {
    NodeId caller;
    HostPort caller_addr;
    PunchMapping mapping;
    std::chrono::steady_clock::time_point expires;
  };
  struct PunchWaiter {
    std::string node_id;
    std::string addr;
    std::chrono::steady_clock::time_point started;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(Result<control::PunchView>)> done;
  };
  void on_punch_offer(net::PunchOfferIn offer, std::function<void(Result<net::PunchAnswerOut>)> done) override;
  void on_punch_go(const NodeId& caller, std::uint64_t punch_id, std::function<void(Result<void>)> done) override;
  void tick_punch();
  void step_punch(bool check_health);
  void check_direct(const HostPort& peer);
  [[nodiscard]] std::vector<std::string> punch_wanted() const;
  [[nodiscard]] std::optional<HostPort> punch_helper() const;
  void start_punch(const std::string& peer_addr, std::uint32_t attempt);
  void learn_mapping(const HostPort& helper, std::function<void(Result<PunchMapping>)> done);
  void connect_punched(const std::shared_ptr<PunchAttempt>& punch);
  void ping_punched(const std::shared_ptr<PunchAttempt>& punch, net::PeerClient::DirectChannel channel);
  void finish_punch(const std::string& peer_addr, Result<void> outcome);
  void answer_punch_waiters();

  // node_raft.cpp: the Raft core bound to its storage, gRPC and the job table (io thread only).
  Result<void> start_transport();
  Result<void> start_raft();
  void tick_raft();
  void pump_raft();
  void send_raft(raft::Envelope envelope);
  // The trace's name for an outgoing Raft message (votes, leadership
  // hand-over, snapshots), or empty for routine replication.
  [[nodiscard]] static std::string raft_send_name(const raft::Message& message);
  void resolve_raft_peer(const NodeId& id);
  void introduce_to_voters();
  [[nodiscard]] HostPort raft_self_addr() const;
  void apply_committed(const raft::Entry& entry);
  void manage_voters();
  void log_raft_changes();
  void hand_over_leadership();
  [[nodiscard]] std::string raft_role() const;
  [[nodiscard]] bool is_leader() const;
  // The leader's peer address, when known and not this node.
  [[nodiscard]] std::optional<HostPort> leader_addr() const;

  // node_blobs.cpp: the blob store and its transfers.
  Result<void> start_store();
  Result<void> start_trace();
  // A local protocol event in this node's trace (a job's when `job_id` is set).
  void trace_local(std::string_view what, std::string_view job_id = {});
  void flush_trace();
  void locate(const NodeId& key, std::function<void(Result<std::vector<chord::Peer>>)> done);

  // node_jobs.cpp: submissions, job queries, results, proposals to the leader.
  struct Submission;
  struct ResultStream;
  struct PendingProposal {
    enum class Until { exists, finished };
    std::string command;
    std::string job_id;  // done once this job exists (or is finished) in the table
    Until until = Until::exists;
    std::chrono::steady_clock::time_point deadline;
    std::chrono::steady_clock::time_point next_try;
    std::function<void(Result<void>)> done;
  };
  void tick_jobs();
  // After committed job commands were applied: workers, the scheduler and
  // waiting clients act at once instead of at their next tick.
  void on_jobs_changed();
  void check_pending_proposals();
  void check_job_watchers(bool all_expired);
  // Runs pump_raft() soon (once), e.g. after a proposal.
  void request_raft_pump();
  struct JobWatcher {
    std::string job_id;
    control::JobWait wait;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(Result<control::JobView>)> done;
  };
  void on_submission_chunk(const std::shared_ptr<Submission>& submission, int matrix, std::size_t chunk,
                           Result<store::BlobId> id);
  void finish_submission(const std::shared_ptr<Submission>& submission);
  void fail_submission(const std::shared_ptr<Submission>& submission, const Error& error);
  void propose_until_applied(std::string command, std::string job_id, PendingProposal::Until until,
                             std::function<void(Result<void>)> done);
  void send_proposal(const std::string& command, const std::string& job_id);
  void fail_job_calls(const Error& error);
  [[nodiscard]] std::uint32_t default_shard_count(std::uint64_t rows) const;

  // node_worker.cpp: this node as a worker.
  struct ShardRun {
    std::string job_id;
    std::uint32_t index = 0;
    std::uint32_t attempt = 0;
    bool finished = false;  // computed (or failed); being reported
    std::string output_ref;
    std::string error;
    std::chrono::steady_clock::time_point next_report;
  };
  void start_worker();
  void tick_worker();
  void send_heartbeat();
  void reconcile_shard_runs();
  void start_shard(const sched::Job& job, const sched::Shard& shard);
  void finish_shard(const std::string& key, std::uint32_t attempt, std::string output_ref, std::string error);
  // Stores a computed block in the ring, retrying what the ring could not
  // take for now (kStoreOutputRetries, backing off from kStoreOutputBackoff).
  void store_shard_output(const std::string& key, std::uint32_t attempt, std::shared_ptr<const FloatBuffer> c,
                          std::uint64_t rows, std::uint64_t cols, std::uint32_t retries);
  void send_shard_report(ShardRun& run);
  [[nodiscard]] sched::WorkerReport worker_report() const;

  // node_verify.cpp: the leader's scheduler and result verification.
  struct Verification {
    enum class State { running, passed, failed } state = State::running;
    std::chrono::steady_clock::time_point proposed_at;
  };
  void tick_leader_jobs();
  void propose_local(const std::string& command);
  void handle_shard_report(const net::ShardReportIn& report);
  struct VerifyTask {
    std::string job_id;
    std::uint32_t index = 0;
    std::uint32_t attempt = 0;
    std::string peer;
    std::string output_ref;
  };
  void start_verifications();
  void verify_shard(const sched::Job& job, const sched::Shard& shard, const std::string& output_ref);
  void on_verdict(const std::string& key, std::string job_id, std::uint32_t index, std::string peer,
                  std::string output_ref, Result<std::string> wrong);

  NodeConfig m_config;
  std::vector<std::string> m_args;
  NodeIdentity m_identity;
  exec::ExecutorInfo m_executor;
  std::chrono::steady_clock::time_point m_started;
  // Bytes of whole matrices submissions are assembling; before m_io, whose
  // queued handlers may hold the last reference to a submission.
  std::atomic<std::uint64_t> m_assembling_bytes{0};
  // The trace: before the peer server and client, whose interceptors use
  // the tracer until they are gone.
  std::unique_ptr<trace::Recorder> m_trace_recorder;
  std::unique_ptr<trace::Tracer> m_tracer;
  std::uint64_t m_traced_apply_from = 0;  // io thread only: Raft entries below were traced before a restart

  boost::asio::io_context m_io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> m_work;
  boost::asio::steady_timer m_tick_timer;
  boost::asio::signal_set m_signals;
  std::thread m_io_thread;
  std::uint64_t m_ticks = 0;      // io thread only
  bool m_stopping = false;        // io thread only: shutdown has begun, re-arm nothing
  bool m_stop_signalled = false;  // io thread only: a SIGTERM/SIGINT arrived
  ServiceNotifier m_service;      // io thread only

  // TLS for every peer connection; declared first of the three, so the
  // server and client that use it go before it.
  std::unique_ptr<tls::SecureTransport> m_transport;
  std::unique_ptr<net::PeerServer> m_peer_server;
  std::unique_ptr<net::PeerClient> m_peer_client;
  net::BootstrapProbe m_bootstrap;  // io thread only
  std::unique_ptr<control::ControlServer> m_control_server;
  HostPort m_listen;

  // Chord (io thread only).
  struct PeerSeen {
    std::string addr;
    std::string executor;
    bool relayed = false;  // its address is a relay allocation
    std::chrono::steady_clock::time_point last_seen;
  };
  std::unique_ptr<chord::Overlay> m_overlay;
  chord::Peer m_chord_self;
  bool m_ring_started = false;  // created, or joining through a bootstrap peer
  // The ring neighbours last written to the log and the trace, and the
  // successor last notified with a traced send (note_ring_changes).
  std::optional<NodeId> m_logged_successor;
  std::optional<NodeId> m_logged_predecessor;
  std::string m_notified_successor;
  std::map<std::uint64_t, std::function<void(chord::OperationResult)>> m_operations;
  std::map<NodeId, PeerSeen> m_peers_seen;
  // Connectivity (node_nat.cpp).
  std::unique_ptr<nat::StunClient> m_stun;
  boost::asio::ip::udp::socket m_stun_socket{m_io};
  boost::asio::ip::udp::endpoint m_stun_sender;
  std::array<std::uint8_t, 1500> m_stun_buffer{};
  std::vector<std::optional<boost::asio::ip::udp::endpoint>> m_stun_endpoints;
  std::vector<bool> m_stun_resolving;
  nat::ObservedAddresses m_observed;
  nat::ReachabilityProbe m_reachability;
  nat::Reachability m_logged_reachability = nat::Reachability::unknown;
  nat::NatMapping m_logged_mapping = nat::NatMapping::unknown;
  std::uint64_t m_next_observation_tick = 40;  // 2 s after start
  // What peers said of their own reachability in ping replies, by address.
  std::map<std::string, std::string> m_peer_reachability;
  // The address announced before any relay: --advertise, or the listen address.
  HostPort m_direct_addr;
  // Joining waits for reachability (and, unreachable, for a relay): the
  // bootstrap peer that answered, and since when we wait.
  std::optional<HostPort> m_join_through;
  std::uint64_t m_join_wait_since = 0;
  // Relaying (node_relay.cpp).
  std::unique_ptr<relay::RelayServer> m_relay_server;
  std::shared_ptr<relay::RelayLink> m_relay_link;
  std::optional<HostPort> m_relay_peer;  // the peer relaying for us
  std::optional<HostPort> m_relay_addr;  // our allocation there
  bool m_relay_reserving = false;
  bool m_relay_stopped = false;  // shutting down: no new reservation or leg
  std::uint64_t m_next_relay_tick = 0;
  std::uint32_t m_relay_failures = 0;
  std::string m_relay_error;
  // Port mapping (node_port_mapping.cpp; io thread only, but for
  // m_gateway). Gateway calls block for seconds, and a gateway that dawdles
  // must not hold shutdown: each runs on a detached thread of its own,
  // sharing only this with the node.
  struct GatewayWork {
    std::mutex mutex;
    std::condition_variable idle;
    bool busy = false;    // a call is running
    bool closed = false;  // the node is shutting down: answers are dropped
    // What gateway calls made on routers and did not remove: the truth for
    // shutdown, even when an answer never reached the core.
    std::vector<nat::MappingRequest> removals;
  };
  std::unique_ptr<nat::PortMapper> m_port_mapper;
  std::string m_port_mapping_off;  // why mapping is not tried (empty: it is)
  std::uint64_t m_mapping_generation = 0;
  std::string m_logged_mapping_error;
  std::shared_ptr<GatewayWork> m_gateway = std::make_shared<GatewayWork>();
  nat::PunchPlanner m_punch_planner;                         // io thread only, as all below
  std::map<std::uint64_t, PunchResponse> m_punch_responses;  // offers answered, by punch id
  // Offers still learning our mapping: their answers, by ticket.
  std::map<std::uint64_t, std::function<void(Result<net::PunchAnswerOut>)>> m_punch_preparing;
  std::uint64_t m_punch_offer_tickets = 0;
  std::size_t m_punch_connecting = 0;  // connects after a go, in flight
  std::chrono::steady_clock::time_point m_punch_offer_window{};
  std::size_t m_punch_offers_in_window = 0;
  std::map<std::string, std::uint32_t> m_punch_rtt_ms;  // the relay round trip of the last punch
  std::vector<PunchWaiter> m_punch_waiters;
  std::size_t m_chord_calls_in_flight = 0;
  bool m_leaving = false;
  bool m_left = false;  // the hand-over is done (or timed out); stopping
  std::chrono::steady_clock::time_point m_leave_deadline;
  control::LeaveView m_leave_view;
  std::vector<std::function<void(Result<control::LeaveView>)>> m_leave_waiters;

  // Raft (io thread only, once the io thread runs).
  std::unique_ptr<raft::RaftStorage> m_raft_storage;
  std::unique_ptr<raft::Raft> m_raft;
  raft::VoterPolicyConfig m_voter_policy;
  sched::JobTable m_jobs;
  std::size_t m_raft_calls_in_flight = 0;
  struct Resolving {
    bool in_flight = false;
    std::chrono::steady_clock::time_point next_allowed;
  };
  std::map<NodeId, Resolving> m_raft_resolving;
  std::map<NodeId, std::string> m_introduced_to;  // voter -> the address of theirs we said hello to
  std::set<NodeId> m_departing;                   // leader: voters that said they leave, to remove next
  bool m_leave_notice_pending = false;            // leaving: the leader has not yet been told
  bool m_raft_failed = false;                     // storage failed: the core is no longer driven
  // The last Raft send recorded in the trace, per peer: a repeat (the same
  // pre-vote every election timeout from a cut-off node, a snapshot's first
  // chunk every heartbeat until it is answered) is not recorded again.
  std::map<NodeId, std::string> m_last_traced_raft_send;
  raft::Term m_logged_term = 0;
  std::optional<NodeId> m_logged_leader;
  std::string m_logged_role;

  // Jobs (io thread only, except where said).
  std::unique_ptr<store::BlobStore> m_blob_store;      // thread-safe
  std::unique_ptr<store::MatrixCache> m_matrix_cache;  // thread-safe
  boost::asio::thread_pool m_blocking{2};              // disk, hashing, verification
  boost::asio::thread_pool m_compute{1};               // shard kernels, one at a time
  boost::asio::thread_pool m_verify_pool{1};           // Freivalds checks (each uses every core itself)
  std::atomic<std::size_t> m_blob_requests{0};         // peers' blob requests being served (any thread)
  std::unique_ptr<BlobTransfer> m_transfer;
  std::unique_ptr<exec::Backend> m_backend;         // m_compute's thread only
  std::optional<sched::Scheduler> m_scheduler;      // while this node leads
  double m_gflops = 0;                              // measured
  bool m_fault_wrong_results = false;               // test-only: P2PD_TEST_FAULT=wrong-results
  std::chrono::milliseconds m_test_shard_delay{0};  // test-only: P2PD_TEST_SHARD_DELAY_MS
  bool m_jobs_closed = false;                       // shutting down: job calls are refused
  Rng m_job_rng{0};                                 // reseeded in start_worker()
  std::uint64_t m_next_stream = 1;
  std::map<std::uint64_t, std::shared_ptr<Submission>> m_submissions;
  std::map<std::uint64_t, std::shared_ptr<ResultStream>> m_result_streams;
  std::vector<PendingProposal> m_pending_proposals;
  std::map<std::string, ShardRun> m_shard_runs;         // "job/index" -> run
  std::map<std::string, Verification> m_verifications;  // "job/index/peer/output" -> verdict
  std::deque<VerifyTask> m_verify_queue;                // reports waiting for a verification slot
  std::size_t m_verifications_running = 0;
  std::chrono::steady_clock::time_point m_next_heartbeat;
  std::vector<JobWatcher> m_job_watchers;
  bool m_jobs_changed = false;       // committed job commands applied since on_jobs_changed()
  bool m_jobs_pass_pending = false;  // on_jobs_changed() is posted
  bool m_raft_pump_pending = false;  // pump_raft() is posted

  std::mutex m_stop_mutex;
  std::condition_variable m_stop_cv;
  bool m_stop_requested = false;
  bool m_shut_down = false;  // the thread that owns the Node: shutdown() ran
};

}  // namespace p2pd::node
