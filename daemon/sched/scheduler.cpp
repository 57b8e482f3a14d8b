#include "daemon/sched/scheduler.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace p2pd::sched {

std::uint64_t shard_memory_bytes(const Job& job, const Shard& shard) {
  const std::uint64_t rows = shard.row_end - shard.row_begin;
  const std::uint64_t k = job.a.cols, n = job.b.cols;
  return (rows * k + k * n + rows * n) * sizeof(float);
}

void Scheduler::tick() {
  ++m_ticks;
  for (auto& [id, w] : m_workers) {
    ++w.silent_ticks;
    if (w.banned_ticks_left > 0) --w.banned_ticks_left;
  }
  // Forget workers long gone (bounded memory) and stale proposal marks.
  std::erase_if(m_workers, [&](const auto& entry) {
    return entry.second.silent_ticks > 10 * m_config.heartbeat_timeout_ticks && entry.second.banned_ticks_left == 0;
  });
  std::erase_if(m_proposed, [&](const auto& entry) { return m_ticks - entry.second >= m_config.repropose_ticks; });
}

void Scheduler::on_heartbeat(const WorkerReport& report) {
  auto& w = m_workers[report.id];
  w.report = report;
  w.report.slots = std::max<std::uint32_t>(report.slots, 1);
  w.silent_ticks = 0;
}

void Scheduler::on_wrong_result(const NodeId& worker) {
  auto& w = m_workers[worker];
  w.report.id = worker;
  w.banned_ticks_left = m_config.ban_ticks;
}

void Scheduler::on_shard_failed(std::string_view job_id, std::uint32_t index, std::string_view worker) {
  // Bounded: a leader's memory of failures is advice, not state.
  static constexpr std::size_t kMaxRemembered = 4096;
  const std::string key = fmt::format("{}/{}", job_id, index);
  if (!m_failed_on.contains(key) && m_failed_on.size() >= kMaxRemembered) m_failed_on.erase(m_failed_on.begin());
  auto& workers = m_failed_on[key];
  if (workers.size() < 64) workers.emplace(worker);
}

bool Scheduler::usable(const Worker& w) const {
  return w.silent_ticks < m_config.heartbeat_timeout_ticks && w.banned_ticks_left == 0;
}

bool Scheduler::fresh_proposal(const std::string& key) {
  return m_proposed.emplace(key, m_ticks).second;
}

std::vector<std::string> Scheduler::plan(const JobTable& table, std::uint64_t now_ms) {
  std::vector<std::string> commands;
  std::erase_if(m_failed_on, [&](const auto& entry) {
    const Job* job = table.find(entry.first.substr(0, entry.first.find('/')));
    return job == nullptr || is_finished(job->state);
  });
  // How many shards each worker runs, by the table (the truth every leader shares).
  std::map<std::string, std::uint32_t> running;
  for (const Job* job : table.jobs()) {
    if (is_finished(job->state)) continue;
    for (const auto& shard : job->shards) {
      if (shard.state == ShardState::assigned) ++running[shard.peer];
    }
  }

  // 1. Take shards back from workers that are gone or caught lying.
  for (const Job* job : table.jobs()) {
    if (is_finished(job->state)) continue;
    for (const auto& shard : job->shards) {
      if (shard.state != ShardState::assigned) continue;
      const auto peer = NodeId::from_hex(shard.peer);
      if (!peer) continue;
      auto it = m_workers.find(*peer);
      std::string reason;
      if (it == m_workers.end() && m_ticks < m_config.heartbeat_timeout_ticks) {
        // A new leader has not heard from anyone yet: a worker assigned by
        // the old one gets one heartbeat timeout to make itself known.
        continue;
      }
      if (it == m_workers.end() || it->second.silent_ticks >= m_config.heartbeat_timeout_ticks) {
        reason = "the worker stopped heartbeating";
      } else if (it->second.banned_ticks_left > 0) {
        reason = "the worker returned a wrong result";
      } else {
        continue;
      }
      if (fresh_proposal(fmt::format("fail/{}/{}/{}", job->job_id, shard.index, shard.peer))) {
        commands.push_back(encode_shard_failed(job->job_id, shard.index, shard.peer, reason));
        on_shard_failed(job->job_id, shard.index, shard.peer);
        --running[shard.peer];
      }
    }
  }

  // 2. Give pending shards to the best free worker, oldest job first.
  std::vector<const Worker*> candidates;
  for (const auto& [id, w] : m_workers) {
    if (usable(w)) candidates.push_back(&w);
  }
  for (const Job* job : table.jobs()) {
    if (is_finished(job->state)) continue;
    for (const auto& shard : job->shards) {
      if (shard.state != ShardState::pending) continue;
      const std::string key = fmt::format("assign/{}/{}/{}", job->job_id, shard.index, shard.attempts);
      if (m_proposed.contains(key)) continue;
      const std::uint64_t need = shard_memory_bytes(*job, shard);
      // Workers this shard already failed on are taken only when no other
      // can take it now.
      const auto failed = m_failed_on.find(fmt::format("{}/{}", job->job_id, shard.index));
      auto failed_here = [&](const std::string& hex) {
        return failed != m_failed_on.end() && failed->second.contains(hex);
      };
      const Worker* best = nullptr;
      for (const Worker* w : candidates) {
        const std::string hex = w->report.id.hex();
        if (running[hex] >= w->report.slots || w->report.memory_bytes < need) continue;
        if (best != nullptr && failed_here(best->report.id.hex()) != failed_here(hex)) {
          if (failed_here(best->report.id.hex())) best = w;
          continue;
        }
        if (best == nullptr) {
          best = w;
          continue;
        }
        const std::string best_hex = best->report.id.hex();
        if (w->report.gflops != best->report.gflops) {
          if (w->report.gflops > best->report.gflops) best = w;
        } else if (running[hex] < running[best_hex]) {
          best = w;
        }
      }
      if (best == nullptr) continue;  // nobody free (or big enough): it waits
      fresh_proposal(key);
      const std::string peer = best->report.id.hex();
      commands.push_back(encode_assign(job->job_id, shard.index, peer, now_ms));
      ++running[peer];
    }
  }
  return commands;
}

std::vector<WorkerView> Scheduler::workers(const JobTable& table) const {
  std::map<std::string, std::uint32_t> running;
  for (const Job* job : table.jobs()) {
    if (is_finished(job->state)) continue;
    for (const auto& shard : job->shards) {
      if (shard.state == ShardState::assigned) ++running[shard.peer];
    }
  }
  std::vector<WorkerView> out;
  for (const auto& [id, w] : m_workers) {
    const auto it = running.find(id.hex());
    out.push_back(WorkerView{w.report, w.silent_ticks, w.banned_ticks_left, it == running.end() ? 0 : it->second});
  }
  return out;
}

}  // namespace p2pd::sched
