// The leader's side of jobs (DESIGN.md, "Data flow of a job", steps 2 and 4):
// the scheduler's commands proposed through Raft, and every reported shard
// verified before it counts. Verification reads the shard's rows of A, all
// of B and the reported block of C from the ring and runs Freivalds' check
// (daemon/exec/verify) off the io thread; a wrong result fails the shard
// back to pending and bans the worker for a while (Scheduler::on_wrong_result).
#include <boost/asio/post.hpp>

#include <thread>

#include "common/log.hpp"
#include "daemon/exec/verify.hpp"
#include "daemon/node/node.hpp"

namespace p2pd::node {
namespace {

using Clock = std::chrono::steady_clock;

// One try of one shard by one worker with one output: a re-run (a new
// attempt) is judged afresh even when its output is the same blob.
std::string verification_key(const std::string& job_id, std::uint32_t index, std::uint32_t attempt,
                             const std::string& peer, const std::string& output_ref) {
  return fmt::format("{}/{}/{}/{}/{}", job_id, index, attempt, peer, output_ref);
}

// A ShardDone proposed for a verified result is proposed again after this if
// it has not been applied (the entry may have been lost with a leader).
constexpr std::chrono::seconds kReproposeDone{2};

}  // namespace

void Node::propose_local(const std::string& command) {
  if (!m_raft) return;
  if (!is_leader()) {
    log::debug(log::Category::sched, "proposal refused: this node is not the leader");
    return;
  }
  // Stamped as a send: every node that applies it records the receipt.
  std::string stamped = command;
  if (auto summary = m_tracer ? sched::summarize(command) : std::nullopt) {
    stamped = sched::with_trace(command, m_tracer->on_send("propose " + summary->what, summary->job_id));
  }
  if (auto index = m_raft->propose(stamped); !index) {
    log::debug(log::Category::sched, "proposal refused: {}", index.error().message);
    return;
  }
  request_raft_pump();  // persisted and sent now, not at the next tick
}

void Node::tick_leader_jobs() {
  if (!is_leader()) {
    if (m_scheduler) {
      log::debug(log::Category::sched, "no longer the leader: scheduler stopped");
      m_scheduler.reset();
      m_verifications.clear();
      m_verify_queue.clear();  // running checks finish and find their entry gone
    }
    return;
  }
  if (!m_scheduler) {
    m_scheduler.emplace();
    log::info(log::Category::sched, "leading: scheduling the pool's jobs");
  }
  m_scheduler->tick();
  if (m_ticks % 4 != 0) return;
  for (const auto& command : m_scheduler->plan(m_jobs, now_unix_ms())) propose_local(command);
  // Verdicts are kept while the shard they judged is still assigned to the
  // worker they judged; after that they have done their work.
  std::erase_if(m_verifications, [&](const auto& entry) {
    const auto& key = entry.first;
    const auto slash = key.find('/');
    const sched::Job* job = m_jobs.find(key.substr(0, slash));
    return job == nullptr || sched::is_finished(job->state) ||
           (entry.second.state != Verification::State::running &&
            Clock::now() - entry.second.proposed_at > std::chrono::minutes(1));
  });
}

void Node::on_worker_heartbeat(net::WorkerHeartbeatIn heartbeat, std::function<void(bool)> done) {
  boost::asio::post(m_io, [this, heartbeat = std::move(heartbeat), done = std::move(done)] {
    if (!is_leader() || !m_scheduler) return done(false);
    m_scheduler->on_heartbeat(sched::WorkerReport{
        heartbeat.node_id, heartbeat.executor == "cuda" ? exec::ExecutorKind::cuda : exec::ExecutorKind::cpu,
        heartbeat.memory_bytes, heartbeat.gflops, heartbeat.slots});
    done(true);
  });
}

void Node::on_shard_report(net::ShardReportIn report, std::function<void(Result<void>)> done) {
  boost::asio::post(m_io, [this, report = std::move(report), done = std::move(done)] {
    if (!is_leader()) return done(make_error(ErrorCode::unavailable, "not the leader"));
    handle_shard_report(report);
    done({});
  });
}

void Node::handle_shard_report(const net::ShardReportIn& report) {
  if (!m_scheduler) return;  // leading for less than a tick: the worker reports again
  const sched::Job* job = m_jobs.find(report.job_id);
  if (job == nullptr || sched::is_finished(job->state) || report.index >= job->shards.size()) return;
  const sched::Shard& shard = job->shards[report.index];
  const std::string peer = report.node_id.hex();
  if (shard.state != sched::ShardState::assigned || shard.peer != peer) return;  // stale
  const std::string key = verification_key(job->job_id, shard.index, shard.attempts, peer, report.output_ref);
  auto [it, fresh] = m_verifications.try_emplace(key);
  Verification& v = it->second;
  if (!report.error.empty()) {
    if (fresh || Clock::now() - v.proposed_at > kReproposeDone) {
      v.state = Verification::State::failed;
      v.proposed_at = Clock::now();
      propose_local(sched::encode_shard_failed(job->job_id, shard.index, peer, "on " + peer + ": " + report.error));
      if (m_scheduler) m_scheduler->on_shard_failed(job->job_id, shard.index, peer);
    }
    return;
  }
  if (fresh) {
    if (m_verifications.size() > kMaxVerifications) {
      m_verifications.erase(it);  // too many at once: the worker reports again later
      return;
    }
    v.state = Verification::State::running;
    // A check holds the shard's A rows, all of B and its C block: at most
    // kMaxConcurrentVerifications at once, the others wait their turn.
    m_verify_queue.push_back(VerifyTask{job->job_id, shard.index, shard.attempts, peer, report.output_ref});
    return start_verifications();
  }
  if (v.state == Verification::State::passed && Clock::now() - v.proposed_at > kReproposeDone) {
    v.proposed_at = Clock::now();
    propose_local(sched::encode_shard_done(job->job_id, shard.index, peer, report.output_ref));
  }
}

void Node::start_verifications() {
  while (m_verifications_running < kMaxConcurrentVerifications && !m_verify_queue.empty()) {
    VerifyTask task = std::move(m_verify_queue.front());
    m_verify_queue.pop_front();
    const std::string key = verification_key(task.job_id, task.index, task.attempt, task.peer, task.output_ref);
    const sched::Job* job = m_jobs.find(task.job_id);
    const bool current = job != nullptr && !sched::is_finished(job->state) && task.index < job->shards.size() &&
                         job->shards[task.index].state == sched::ShardState::assigned &&
                         job->shards[task.index].peer == task.peer && job->shards[task.index].attempts == task.attempt;
    if (!current || !m_verifications.contains(key)) {
      m_verifications.erase(key);  // taken back meanwhile: nothing to judge
      continue;
    }
    ++m_verifications_running;
    verify_shard(*job, job->shards[task.index], task.output_ref);
  }
}

void Node::verify_shard(const sched::Job& job, const sched::Shard& shard, const std::string& output_ref) {
  const std::string key = verification_key(job.job_id, shard.index, shard.attempts, shard.peer, output_ref);
  auto a_ref = store::BlobId::from_hex(job.a.ref);
  auto b_ref = store::BlobId::from_hex(job.b.ref);
  auto c_ref = store::BlobId::from_hex(output_ref);
  if (!a_ref || !b_ref || !c_ref) {
    return on_verdict(key, job.job_id, shard.index, shard.peer, output_ref,
                      std::string("the job's references are not blob ids"));
  }
  const exec::GemmShape shape{shard.row_end - shard.row_begin, job.a.cols, job.b.cols};
  auto all_fetched = [this, key, job_id = job.job_id, index = shard.index, peer = shard.peer, output_ref,
                      shape](Result<std::vector<MatrixRows>> fetched) {
    if (!fetched) {
      // The inputs or the output cannot be read: the shard is re-run, which
      // writes them again, rather than waiting on data that may be gone.
      return on_verdict(key, job_id, index, peer, output_ref,
                        Error{fetched.error().code, "its output could not be read: " + fetched.error().message});
    }
    // A, B and C; freed as soon as the check is done.
    auto operands = std::make_shared<std::vector<MatrixRows>>(std::move(*fetched));
    const auto& c_manifest = (*operands)[2].manifest;
    if (c_manifest.rows != shape.m || c_manifest.cols != shape.n) {
      return on_verdict(
          key, job_id, index, peer, output_ref,
          fmt::format("its output is {}x{}, expected {}x{}", c_manifest.rows, c_manifest.cols, shape.m, shape.n));
    }
    const std::uint64_t seed = m_job_rng.next();
    boost::asio::post(m_verify_pool, [this, key, job_id, index, peer, output_ref, operands, shape, seed] {
      auto verdict = exec::verify_gemm(
          (*operands)[0].values, (*operands)[1].values, (*operands)[2].values, shape, seed, 4,
          m_config.cpu_threads != 0 ? m_config.cpu_threads : std::max(1u, std::thread::hardware_concurrency()));
      Result<std::string> outcome = std::string();
      if (!verdict) {
        outcome = verdict.error();
      } else if (!verdict->correct) {
        outcome = fmt::format("wrong result (row {} off by {:.3g} times the rounding allowance)",
                              shape.m == 0 ? 0 : verdict->worst_row, verdict->worst_ratio);
      }
      operands->clear();
      boost::asio::post(m_io, [this, key, job_id, index, peer, output_ref, outcome = std::move(outcome)] {
        on_verdict(key, job_id, index, peer, output_ref, outcome);
      });
    });
  };
  m_transfer->fetch_rows_all({{*a_ref, shard.row_begin, shard.row_end}, {*b_ref, 0, 0}, {*c_ref, 0, 0}},
                             std::move(all_fetched));
}

// `wrong`: empty when the result is right; otherwise why it is not (a
// Result error: it could not be checked at all).
void Node::on_verdict(const std::string& key, std::string job_id, std::uint32_t index, std::string peer,
                      std::string output_ref, Result<std::string> wrong) {
  --m_verifications_running;
  start_verifications();
  auto it = m_verifications.find(key);
  if (it == m_verifications.end() || !is_leader()) return;  // no longer ours to decide
  it->second.proposed_at = Clock::now();
  if (wrong && wrong->empty()) {
    it->second.state = Verification::State::passed;
    log::info(log::Category::sched, "shard {} of job {} from {} verified", index, job_id, peer);
    trace_local(fmt::format("shard {} verified", index), job_id);
    return propose_local(sched::encode_shard_done(job_id, index, peer, output_ref));
  }
  it->second.state = Verification::State::failed;
  const std::string reason = wrong ? *wrong : wrong.error().message;
  if (wrong) {
    // Caught returning a wrong result: no work for a while.
    log::warn(log::Category::sched, "shard {} of job {} from {} failed verification: {}", index, job_id, peer, reason);
    trace_local(fmt::format("shard {} from {} failed verification", index, peer.substr(0, 12)), job_id);
    if (auto id = NodeId::from_hex(peer); id && m_scheduler) m_scheduler->on_wrong_result(*id);
  } else {
    log::warn(log::Category::sched, "shard {} of job {} from {} could not be verified: {}", index, job_id, peer,
              reason);
  }
  propose_local(sched::encode_shard_failed(job_id, index, peer, "on " + peer + ": " + reason));
  if (m_scheduler) m_scheduler->on_shard_failed(job_id, index, peer);
}

}  // namespace p2pd::node
