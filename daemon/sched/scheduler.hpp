#pragma once
// The leader's scheduler (DESIGN.md daemon/sched), sans-IO: it reads the
// replicated job table and what it hears from workers, and says which
// commands to propose through Raft. It never changes the table itself, so
// a new leader's scheduler starts from exactly the state the old one left.
//
// - A pending shard goes to the best live worker with a free slot and the
//   memory the shard needs: faster measured speed first, then fewer
//   shards running, then the lower id (deterministic).
// - A shard whose worker stops heartbeating, or was caught returning a
//   wrong result, is failed back to pending (the table counts attempts and
//   fails the job after its limit), so it is re-run elsewhere.
// - A worker caught lying gets no work for `ban_ticks`.
// Commands it proposed are not proposed again until `repropose_ticks` have
// passed (they may still be on their way through the log).

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/node_id.hpp"
#include "daemon/exec/executor_select.hpp"
#include "daemon/sched/job_table.hpp"

namespace p2pd::sched {

struct SchedulerConfig {
  std::uint32_t heartbeat_timeout_ticks = 100;  // 5 s at 50 ms ticks
  std::uint32_t ban_ticks = 6000;               // 5 min
  std::uint32_t repropose_ticks = 40;
};

struct WorkerReport {
  NodeId id;
  exec::ExecutorKind executor = exec::ExecutorKind::cpu;
  std::uint64_t memory_bytes = 0;  // what a shard may use
  double gflops = 0;               // measured; 0 while unknown
  std::uint32_t slots = 1;         // shards it runs at once
};

struct WorkerView {
  WorkerReport report;
  std::uint32_t silent_ticks = 0;
  std::uint32_t banned_ticks_left = 0;
  std::uint32_t running = 0;  // shards assigned to it in the table
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerConfig config = {}) : m_config(config) {}

  void tick();
  void on_heartbeat(const WorkerReport& report);
  // Verification failed for a result of `worker`.
  void on_wrong_result(const NodeId& worker);
  // A try of a shard failed on `worker` (it said so, or its result could not
  // be checked): the retry goes to another worker when there is one. A
  // worker cut off from the ring for a moment fails every shard it gets.
  void on_shard_failed(std::string_view job_id, std::uint32_t index, std::string_view worker);

  // The commands to propose now (encoded for the job table), in order.
  std::vector<std::string> plan(const JobTable& table, std::uint64_t now_ms);

  [[nodiscard]] std::vector<WorkerView> workers(const JobTable& table) const;

 private:
  struct Worker {
    WorkerReport report;
    std::uint32_t silent_ticks = 0;
    std::uint32_t banned_ticks_left = 0;
  };
  [[nodiscard]] bool usable(const Worker& w) const;
  // True when `key` was not proposed within repropose_ticks; records it.
  bool fresh_proposal(const std::string& key);

  SchedulerConfig m_config;
  std::uint64_t m_ticks = 0;
  std::map<NodeId, Worker> m_workers;
  std::map<std::string, std::uint64_t> m_proposed;  // command key -> tick proposed
  // "job/index" -> the workers a try of that shard failed on (bounded).
  std::map<std::string, std::set<std::string>> m_failed_on;
};

// Bytes a worker needs for one shard of `job`: its rows of A, all of B, its rows of C.
std::uint64_t shard_memory_bytes(const Job& job, const Shard& shard);

}  // namespace p2pd::sched
