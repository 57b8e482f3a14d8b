#pragma once
// What the control service needs from the node. The service lives on gRPC's
// threads; the node answers on its own io thread and calls `done` there
// (DESIGN.md, "Threading": handlers post onto the driver).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

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

class ControlHandler {
 public:
  virtual ~ControlHandler() = default;
  // `done` runs exactly once, on the node's io thread.
  virtual void get_status(std::function<void(NodeStatus)> done) = 0;
};

}  // namespace p2pd::control
