#pragma once
// What the control service needs from the node. The service lives on gRPC's
// threads; the node answers on its own io thread and calls `done` there
// (DESIGN.md, "Threading": handlers post onto the driver).

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "daemon/trace/recorder.hpp"

namespace p2pd::control {

struct BootstrapPeerStatus {
  std::string addr;
  std::optional<std::string> node_id;  // hex, once it answered
  std::uint32_t failures = 0;
};

struct NodeStatus {
  std::string node_id;  // hex
  std::string listen;
  std::vector<std::string> observed_addrs;
  std::string reachability;  // public | private | unknown
  std::optional<std::string> leader_id;
  std::string executor;  // cuda | cpu
  std::string executor_device;
  std::string version;
  std::uint64_t uptime_s = 0;
  std::uint32_t pid = 0;
  std::string state_dir;
  std::vector<BootstrapPeerStatus> bootstrap;
};

struct RaftFollowerView {
  std::string node_id;
  std::uint64_t match_index = 0;
  std::uint64_t silent_ms = 0;
  bool voter = false;
};

// A worker as the leader's scheduler sees it.
struct WorkerView {
  std::string node_id;
  std::string executor;
  double gflops = 0;
  std::uint64_t memory_bytes = 0;
  std::uint32_t slots = 0;
  std::uint32_t running = 0;
  std::uint64_t silent_ms = 0;
  std::uint64_t banned_ms = 0;  // no work for this much longer (caught lying)
};

struct LeaderView {
  std::uint64_t term = 0;
  std::optional<std::string> leader_id;
  std::optional<std::string> leader_addr;
  std::string role;  // leader | follower | candidate | learner
  std::vector<std::string> voters;
  std::uint64_t commit_index = 0;
  std::uint64_t last_index = 0;
  std::uint64_t applied_index = 0;
  std::uint64_t snapshot_index = 0;
  std::uint32_t target_voters = 0;
  std::vector<RaftFollowerView> followers;
  std::vector<WorkerView> workers;  // on the leader: the scheduler's workers
};

struct NodeRef {
  std::string node_id;  // hex
  std::string addr;
};

struct FingerView {
  std::string start;  // hex
  NodeRef node;
};

struct RingView {
  NodeRef self;
  std::optional<NodeRef> predecessor;
  std::vector<NodeRef> successors;
  std::vector<FingerView> fingers;
  bool member = false;
};

struct LookupView {
  std::string key;  // hex
  NodeRef owner;
  std::uint32_t hops = 0;
  std::vector<std::string> path;  // node ids
  std::vector<NodeRef> replicas;
};

struct PeerView {
  std::string node_id;
  std::string addr;
  std::string connection;  // direct | punched | relayed | none
  std::string executor;    // cuda | cpu | unknown
  std::optional<std::uint64_t> last_seen_s;
  std::vector<std::string> roles;
};

struct PutView {
  std::string key;
  std::uint64_t version = 0;
  std::uint32_t copies = 0;
  std::vector<NodeRef> holders;
};

struct GetView {
  std::string key;
  std::string value;
  std::uint64_t version = 0;
};

struct LeaveView {
  std::uint32_t keys_handed_over = 0;
  std::string successor;
};

// A job submission's first message (p2pctl submit): the shapes, then the
// data follows as raw float32 rows, A's then B's.
struct SubmitHeader {
  std::string kind;  // "gemm"
  std::uint64_t a_rows = 0;
  std::uint64_t a_cols = 0;
  std::uint64_t b_rows = 0;
  std::uint64_t b_cols = 0;
  std::uint32_t shards = 0;  // 0: one per worker
  std::uint32_t max_attempts = 0;
  std::string submitter;
};

struct SubmitView {
  std::string job_id;
  std::uint32_t shards = 0;
};

struct ShardView {
  std::uint32_t index = 0;
  std::string state;  // pending | assigned | done
  std::string peer;
  std::uint32_t attempts = 0;
  std::uint32_t row_begin = 0;
  std::uint32_t row_end = 0;
  std::string last_error;
};

struct JobView {
  std::string job_id;
  std::string kind;
  std::string state;  // queued | running | done | failed | cancelled
  std::vector<ShardView> shards;
  std::optional<std::string> error;
  std::uint64_t submitted_at = 0;  // Unix seconds
  std::string submitter;
  std::uint64_t a_rows = 0;
  std::uint64_t a_cols = 0;
  std::uint64_t b_rows = 0;
  std::uint64_t b_cols = 0;
  std::uint32_t max_attempts = 0;
};

struct TraceQueryView {
  std::string job_id;                              // empty: all events; else an id or a unique prefix
  std::map<std::string, std::uint64_t> after_seq;  // per host: only later events
};

struct TraceView {
  std::vector<trace::TraceEvent> events;  // in Lamport order
  std::vector<std::string> unreachable;   // peers whose events could not be had
  std::string job_id;
  bool truncated = false;
};

struct JobSummaryView {
  std::string job_id;
  std::string kind;
  std::string state;
  std::uint64_t submitted_at = 0;
  std::uint32_t shards_done = 0;
  std::uint32_t shards_total = 0;
};

// A long poll on a job: answer once it differs from what the caller knows.
struct JobWait {
  std::uint32_t wait_ms = 0;  // 0: answer at once
  std::string known_state;
  std::uint32_t known_shards_done = 0;
};

struct ResultStreamView {
  std::uint64_t stream = 0;  // names the stream in result_next/result_end
  std::uint64_t rows = 0;
  std::uint64_t cols = 0;
};

// What this node knows of its connectivity (p2pctl netcheck).
struct ObservedAddressView {
  std::string ip;
  std::size_t observers = 0;  // distinct observer IPs reporting it
  bool adopted = false;
};
struct StunServerView {
  std::string server;
  std::optional<std::string> mapped;  // the reflexive address it reported
  std::uint64_t rtt_ms = 0;
  std::string error;  // the last failure
};
struct NetcheckView {
  std::vector<ObservedAddressView> observed;
  std::size_t observers = 0;
  std::string reachability;  // public | private | unknown
  std::string reachability_detail;
  std::optional<std::uint64_t> reachability_checked_s;  // seconds ago
  std::string nat_mapping;                              // none | endpoint-independent | endpoint-dependent | unknown
  std::vector<StunServerView> stun;
  std::string port_mapping;  // none | upnp | natpmp
  struct PortMappingState {
    bool enabled = false;          // this node asks its router
    std::string addr;              // what the router forwards to us: its address, the port
    std::string gateway;           // who granted it
    std::uint32_t lifetime_s = 0;  // 0: until removed
    std::uint64_t renew_in_s = 0;
    std::uint64_t renewals = 0;
    std::string error;  // why there is no mapping, or the last renewal failed
  } port_mapping_state;
  struct RelayUse {
    std::string state = "none";  // none | connecting | connected
    std::string peer;
    std::string addr;
    std::string error;
  } relay;
  struct RelayService {
    std::uint32_t reservations = 0;
    std::uint32_t circuits = 0;
    std::uint64_t bytes_relayed = 0;
    std::uint64_t circuits_refused = 0;
    std::uint32_t max_reservations = 0;
    std::uint32_t max_circuits = 0;
    std::uint32_t max_rate_mib = 0;
  };
  std::optional<RelayService> relay_service;
  struct Punching {
    std::uint64_t attempts = 0;
    std::uint64_t succeeded = 0;
    std::uint64_t direct_calls = 0;
    std::vector<std::string> direct;
    std::vector<std::string> relayed;
  } punching;
};

struct PunchView {
  std::string node_id;
  std::string addr;
  std::string result;  // punched | failed
  std::uint32_t rtt_ms = 0;
  std::uint32_t elapsed_ms = 0;
  std::uint32_t attempts = 0;
  std::string error;
};

class ControlHandler {
 public:
  virtual ~ControlHandler() = default;
  // Each `done` runs exactly once, on the node's io thread.
  virtual void get_status(std::function<void(NodeStatus)> done) = 0;
  virtual void get_ring(std::function<void(RingView)> done) = 0;
  virtual void get_peers(std::function<void(std::vector<PeerView>)> done) = 0;
  // `key`: exactly 40 hex digits is the id itself; anything else is hashed.
  virtual void lookup(std::string key, std::function<void(Result<LookupView>)> done) = 0;
  virtual void put(std::string key, std::string value, std::function<void(Result<PutView>)> done) = 0;
  virtual void get(std::string key, std::function<void(Result<GetView>)> done) = 0;
  virtual void leave(std::function<void(Result<LeaveView>)> done) = 0;
  virtual void get_leader(std::function<void(LeaderView)> done) = 0;
  virtual void netcheck(std::function<void(NetcheckView)> done) = 0;
  // `peer`: a node id or HOST:PORT; answered when the attempt ends.
  virtual void punch(std::string peer, std::function<void(Result<PunchView>)> done) = 0;

  // A submission is a stream: begin, data (each answered once the daemon
  // can take more: flow control), end (answered once the job is committed
  // to the pool's job table). abort when the client goes away first.
  virtual void submit_begin(SubmitHeader header, std::function<void(Result<std::uint64_t>)> done) = 0;
  virtual void submit_data(std::uint64_t submission, std::string data, std::function<void(Result<void>)> done) = 0;
  virtual void submit_end(std::uint64_t submission, std::function<void(Result<SubmitView>)> done) = 0;
  virtual void submit_abort(std::uint64_t submission) = 0;

  virtual void list_jobs(std::function<void(std::vector<JobSummaryView>)> done) = 0;
  // `id`: a job id or a unique prefix of at least 6 hex digits.
  virtual void get_job(std::string id, JobWait wait, std::function<void(Result<JobView>)> done) = 0;
  virtual void cancel_job(std::string id, std::function<void(Result<JobView>)> done) = 0;

  // A finished job's output, streamed: begin, next until it gives nullopt,
  // end (always, also when the client goes away).
  virtual void result_begin(std::string id, std::function<void(Result<ResultStreamView>)> done) = 0;
  virtual void result_next(std::uint64_t stream, std::function<void(Result<std::optional<std::string>>)> done) = 0;
  virtual void result_end(std::uint64_t stream) = 0;

  // The pool's causal trace (this node's and every reachable peer's events).
  virtual void trace(TraceQueryView query, std::function<void(Result<TraceView>)> done) = 0;
};

}  // namespace p2pd::control
