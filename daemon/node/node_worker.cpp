// This node as a worker (DESIGN.md, "Data flow of a job", step 3): it tells
// the leader it is alive, learns its shards from the replicated job table,
// fetches only the chunks a shard needs straight from their holders, runs
// the kernel on the compute thread, stores the output block and reports it.
// A report is repeated until the table shows the shard done or taken back,
// so a leader change loses nothing.
#include <unistd.h>

#include <boost/asio/post.hpp>

#include <cmath>
#include <cstdlib>

#include "common/log.hpp"
#include "daemon/node/node.hpp"
#include "proto/peer.pb.h"

namespace p2pd::node {
namespace {

using Clock = std::chrono::steady_clock;

std::string run_key(const std::string& job_id, std::uint32_t index) {
  return fmt::format("{}/{}", job_id, index);
}

// What a shard may use: half of this machine's memory.
std::uint64_t shard_memory_budget() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return std::uint64_t{1} << 30;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size) / 2;
}

// GFLOP/s of one m x k x n sgemm that took `seconds`.
double gflops_of(const exec::GemmShape& shape, double seconds) {
  if (seconds <= 0) return 0;
  return 2.0 * static_cast<double>(shape.m) * static_cast<double>(shape.k) * static_cast<double>(shape.n) / seconds /
         1e9;
}

}  // namespace

void Node::start_worker() {
  const char* fault = std::getenv("P2PD_TEST_FAULT");
  m_fault_wrong_results = fault != nullptr && std::string_view(fault) == "wrong-results";
  if (m_fault_wrong_results) {
    log::warn(log::Category::exec, "P2PD_TEST_FAULT=wrong-results: this node returns wrong results (tests only)");
  }
  if (const char* delay = std::getenv("P2PD_TEST_SHARD_DELAY_MS")) {
    m_test_shard_delay = std::chrono::milliseconds(std::strtoul(delay, nullptr, 10));
    log::warn(log::Category::exec, "P2PD_TEST_SHARD_DELAY_MS: each shard waits {} ms before it runs (tests only)",
              m_test_shard_delay.count());
  }
  m_job_rng = Rng(std::hash<std::string>{}(m_identity.id.hex()) ^
                  static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()));
  m_backend = m_executor.kind == exec::ExecutorKind::cuda ? exec::make_cuda_backend() : nullptr;
  if (!m_backend) m_backend = exec::make_cpu_backend(m_config.cpu_threads);
  // The speed the scheduler ranks workers by: one small sgemm now, then
  // every shard this node runs.
  boost::asio::post(m_compute, [this] {
    const exec::GemmShape shape{512, 512, 512};
    std::vector<float> a(shape.m * shape.k, 1.0f), b(shape.k * shape.n, 1.0f), c(shape.m * shape.n);
    double best = 0;
    for (int round = 0; round < 2; ++round) {
      const auto start = Clock::now();
      if (!m_backend->gemm(a, b, c, shape)) return;
      best = std::max(best, gflops_of(shape, std::chrono::duration<double>(Clock::now() - start).count()));
    }
    // Described here, on the only thread that may touch m_backend.
    std::string described = fmt::format("executor {}: {}", exec::to_string(m_backend->kind()), m_backend->describe());
    boost::asio::post(m_io, [this, best, described = std::move(described)] {
      m_gflops = best;
      log::info(log::Category::exec, "{}; about {:.0f} GFLOP/s", described, best);
    });
  });
}

sched::WorkerReport Node::worker_report() const {
  return sched::WorkerReport{m_identity.id, m_executor.kind, shard_memory_budget(), m_gflops, 1};
}

void Node::tick_worker() {
  if (!m_raft || m_leaving) return;
  const auto now = Clock::now();
  if (now >= m_next_heartbeat) {
    m_next_heartbeat = now + kWorkerHeartbeatInterval;
    send_heartbeat();
  }
  if (m_ticks % 4 == 0) reconcile_shard_runs();
  for (auto& [key, run] : m_shard_runs) {
    if (run.finished && now >= run.next_report) send_shard_report(run);
  }
}

void Node::send_heartbeat() {
  const sched::WorkerReport report = worker_report();
  if (is_leader()) {
    if (m_scheduler) m_scheduler->on_heartbeat(report);
    return;
  }
  auto addr = leader_addr();
  if (!addr) return;
  proto::WorkerHeartbeat heartbeat;
  heartbeat.set_node_id(std::string(m_identity.id.bytes().begin(), m_identity.id.bytes().end()));
  heartbeat.set_executor(std::string(exec::to_string(report.executor)));
  heartbeat.set_memory_bytes(report.memory_bytes);
  heartbeat.set_gflops(report.gflops);
  heartbeat.set_slots(report.slots);
  m_peer_client->job_heartbeat(*addr, heartbeat, kJobCallTimeout, [](Result<proto::WorkerHeartbeatReply> reply) {
    if (!reply) log::trace(log::Category::sched, "heartbeat to the leader failed: {}", reply.error().message);
  });
}

void Node::reconcile_shard_runs() {
  const std::string self = m_identity.id.hex();
  // Runs the table no longer gives this node (done, taken back, job over)
  // are forgotten; a kernel still running for one finds its run gone.
  std::erase_if(m_shard_runs, [&](const auto& entry) {
    const ShardRun& run = entry.second;
    const sched::Job* job = m_jobs.find(run.job_id);
    if (job == nullptr || sched::is_finished(job->state) || run.index >= job->shards.size()) return true;
    const sched::Shard& shard = job->shards[run.index];
    return shard.state != sched::ShardState::assigned || shard.peer != self || shard.attempts != run.attempt;
  });
  const std::size_t slots = worker_report().slots;
  for (const sched::Job* job : m_jobs.jobs()) {
    if (sched::is_finished(job->state)) continue;
    for (const auto& shard : job->shards) {
      if (m_shard_runs.size() >= slots) return;
      if (shard.state != sched::ShardState::assigned || shard.peer != self) continue;
      if (m_shard_runs.contains(run_key(job->job_id, shard.index))) continue;
      start_shard(*job, shard);
    }
  }
}

void Node::start_shard(const sched::Job& job, const sched::Shard& shard) {
  const std::string key = run_key(job.job_id, shard.index);
  m_shard_runs[key] = ShardRun{job.job_id, shard.index, shard.attempts, false, {}, {}, {}};
  log::info(log::Category::exec, "running shard {} of job {} (rows {}..{}, attempt {})", shard.index, job.job_id,
            shard.row_begin, shard.row_end, shard.attempts);
  auto a_ref = store::BlobId::from_hex(job.a.ref);
  auto b_ref = store::BlobId::from_hex(job.b.ref);
  if (!a_ref || !b_ref) return finish_shard(key, shard.attempts, {}, "the job's inputs are not blob ids");

  const std::uint32_t attempt = shard.attempts;
  const exec::GemmShape gemm_shape{shard.row_end - shard.row_begin, job.a.cols, job.b.cols};
  auto both_fetched = [this, key, attempt, gemm_shape](Result<std::vector<MatrixRows>> inputs) {
    if (auto it = m_shard_runs.find(key); it == m_shard_runs.end() || it->second.attempt != attempt) {
      return;  // taken back while its inputs were on their way: do not run it
    }
    if (!inputs) return finish_shard(key, attempt, {}, "fetching inputs: " + inputs.error().message);
    auto a = std::make_shared<MatrixRows>(std::move((*inputs)[0]));
    auto b = std::make_shared<MatrixRows>(std::move((*inputs)[1]));
    if (a->manifest.cols != gemm_shape.k || b->manifest.rows != gemm_shape.k || b->manifest.cols != gemm_shape.n) {
      return finish_shard(key, attempt, {}, "the stored inputs do not have the job's shapes");
    }
    auto compute = [this, key, attempt, a, b, gemm_shape] {
      std::shared_ptr<FloatBuffer> c;
      std::string error;
      const auto start = Clock::now();
      try {
        c = std::make_shared<FloatBuffer>(gemm_shape.m * gemm_shape.n);
        auto ran = m_backend->gemm(a->values, b->values, c->span(), gemm_shape);
        if (!ran && m_backend->kind() == exec::ExecutorKind::cuda) {
          // A GPU fault fails over to the CPU instead of failing the shard.
          log::warn(log::Category::exec, "CUDA failed ({}); running shards on the CPU from now on",
                    ran.error().message);
          m_backend = exec::make_cpu_backend(m_config.cpu_threads);
          boost::asio::post(m_io, [this] { m_executor = exec::ExecutorInfo{exec::ExecutorKind::cpu, {}}; });
          ran = m_backend->gemm(a->values, b->values, c->span(), gemm_shape);
        }
        if (!ran) error = ran.error().message;
      } catch (const std::bad_alloc&) {
        error = "not enough memory for the output block";
      }
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      if (error.empty() && m_fault_wrong_results) {
        for (std::size_t i = 0; i < c->size(); i += 7) c->data()[i] += 1.0f;
      }
      boost::asio::post(m_io, [this, key, attempt, c, gemm_shape, seconds, error] {
        if (!error.empty()) return finish_shard(key, attempt, {}, error);
        const double measured = gflops_of(gemm_shape, seconds);
        // Small shards measure call overhead, not speed: only a shard of at
        // least a GFLOP updates the estimate.
        if (2.0 * static_cast<double>(gemm_shape.m * gemm_shape.k * gemm_shape.n) >= 1e9) {
          m_gflops = m_gflops == 0 ? measured : 0.7 * m_gflops + 0.3 * measured;
        }
        log::info(log::Category::exec, "shard {} computed in {:.2f} s ({:.0f} GFLOP/s)", key, seconds, measured);
        if (auto run = m_shard_runs.find(key); run != m_shard_runs.end()) {
          trace_local(fmt::format("shard {} computed", run->second.index), run->second.job_id);
        }
        auto it = m_shard_runs.find(key);
        if (it == m_shard_runs.end() || it->second.attempt != attempt) return;  // taken back meanwhile
        store_shard_output(key, attempt, c, gemm_shape.m, gemm_shape.n, 0);
      });
    };
    if (m_test_shard_delay.count() == 0) return boost::asio::post(m_compute, std::move(compute));
    auto timer = std::make_shared<boost::asio::steady_timer>(m_io, m_test_shard_delay);
    timer->async_wait(
        [this, timer, key, attempt, compute = std::move(compute)](const boost::system::error_code& ec) mutable {
          auto it = m_shard_runs.find(key);
          if (ec || it == m_shard_runs.end() || it->second.attempt != attempt) return;
          boost::asio::post(m_compute, std::move(compute));
        });
  };
  m_transfer->fetch_rows_all({{*a_ref, shard.row_begin, shard.row_end}, {*b_ref, 0, 0}}, std::move(both_fetched));
}

void Node::store_shard_output(const std::string& key, std::uint32_t attempt, std::shared_ptr<const FloatBuffer> c,
                              std::uint64_t rows, std::uint64_t cols, std::uint32_t retries) {
  m_transfer->store_matrix(c, rows, cols, [this, key, attempt, c, rows, cols, retries](Result<store::BlobId> stored) {
    if (stored) return finish_shard(key, attempt, stored->hex(), {});
    auto it = m_shard_runs.find(key);
    if (it == m_shard_runs.end() || it->second.attempt != attempt || m_stopping) return;  // taken back meanwhile
    // The ring could not take it now (a holder gone, a node cut off for a
    // moment): the result is worth keeping, so try again a few times,
    // backing off, before the shard counts as failed.
    if (stored.error().code != ErrorCode::unavailable || retries >= kStoreOutputRetries) {
      return finish_shard(key, attempt, {}, "storing the output: " + stored.error().message);
    }
    log::info(log::Category::exec, "shard {}: storing the output failed ({}); trying again", key,
              stored.error().message);
    auto timer = std::make_shared<boost::asio::steady_timer>(m_io, kStoreOutputBackoff * (1u << retries));
    timer->async_wait([this, timer, key, attempt, c, rows, cols, retries](const boost::system::error_code& ec) {
      if (ec || m_stopping) return;
      store_shard_output(key, attempt, c, rows, cols, retries + 1);
    });
  });
}

void Node::finish_shard(const std::string& key, std::uint32_t attempt, std::string output_ref, std::string error) {
  auto it = m_shard_runs.find(key);
  if (it == m_shard_runs.end() || it->second.attempt != attempt) return;
  ShardRun& run = it->second;
  run.finished = true;
  run.output_ref = std::move(output_ref);
  run.error = std::move(error);
  if (!run.error.empty()) log::warn(log::Category::exec, "shard {} failed here: {}", key, run.error);
  send_shard_report(run);
}

void Node::send_shard_report(ShardRun& run) {
  run.next_report = Clock::now() + kShardReportInterval;
  net::ShardReportIn report{m_identity.id, run.job_id, run.index, run.output_ref, run.error};
  if (is_leader()) return handle_shard_report(report);
  auto addr = leader_addr();
  if (!addr) return;
  proto::ShardReport message;
  message.set_node_id(std::string(m_identity.id.bytes().begin(), m_identity.id.bytes().end()));
  message.set_job_id(report.job_id);
  message.set_index(report.index);
  message.set_output_ref(report.output_ref);
  message.set_error(report.error);
  const std::string stamp =
      m_tracer ? m_tracer->on_send(fmt::format("shard {} reported", run.index), run.job_id) : std::string();
  m_peer_client->shard_report(
      *addr, message, kJobCallTimeout,
      [](Result<proto::ShardReportReply> reply) {
        if (!reply) log::debug(log::Category::sched, "shard report to the leader failed: {}", reply.error().message);
      },
      stamp);
}

}  // namespace p2pd::node
