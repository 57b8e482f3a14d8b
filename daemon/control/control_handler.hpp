#pragma once
// What the control service needs from the node. The service lives on gRPC's
// threads; the node answers on its own io thread and calls `done` there
// (DESIGN.md, "Threading": handlers post onto the driver).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

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
};

}  // namespace p2pd::control
