// Jobs as a user sees them (DESIGN.md, "Data flow of a job", steps 1, 2 and
// 5): a submission streamed in and stored as chunks on the ring, its
// manifest committed through the Raft leader, queries answered from this
// node's replica of the job table, and a finished job's output streamed out.
#include <boost/asio/post.hpp>

#include <algorithm>
#include <array>
#include <cstring>

#include "common/log.hpp"
#include "common/one_line.hpp"
#include "daemon/node/node.hpp"
#include "proto/peer.pb.h"

namespace p2pd::node {
namespace {

using Clock = std::chrono::steady_clock;

control::JobView view_of(const sched::Job& job) {
  control::JobView view;
  view.job_id = job.job_id;
  view.kind = job.kind;
  view.state = std::string(sched::to_string(job.state));
  for (const auto& s : job.shards) {
    view.shards.push_back(control::ShardView{s.index, std::string(sched::to_string(s.state)), s.peer, s.attempts,
                                             s.row_begin, s.row_end, s.last_error});
  }
  if (job.state == sched::JobState::failed) view.error = job.error;
  view.submitted_at = job.submitted_at_ms / 1000;
  view.submitter = job.submitter;
  view.a_rows = job.a.rows;
  view.a_cols = job.a.cols;
  view.b_rows = job.b.rows;
  view.b_cols = job.b.cols;
  view.max_attempts = job.max_attempts;
  return view;
}

Error closed_error() {
  return make_error(ErrorCode::unavailable, "p2pd is shutting down");
}

}  // namespace

// One submission on its way in. The data arrives as A's rows then B's; each
// chunk's worth is stored as soon as it is complete, at most kSubmitWindow
// at once, and the client's next message is read only when there is room.
struct Node::Submission {
  std::uint64_t id = 0;
  control::SubmitHeader header;
  std::uint32_t shards = 0;
  std::array<store::MatrixManifest, 2> manifests;
  // Each matrix is assembled whole when the matrix cache can keep it: the
  // chunks are stored straight from it, and the local worker and verifier
  // then read it without a copy. Otherwise each chunk is a string of its own.
  std::array<std::shared_ptr<FloatBuffer>, 2> whole;
  std::atomic<std::uint64_t>* assembling = nullptr;  // Node's total of `whole` bytes
  std::uint64_t whole_bytes = 0;
  int matrix = 0;            // being received: 0 A, 1 B, 2 both complete
  std::size_t chunk = 0;     // being filled in `matrix`
  std::uint64_t filled = 0;  // its bytes so far
  std::string pending;       // and those bytes, when `matrix` is not assembled whole
  std::size_t in_flight = 0;
  std::optional<Error> error;
  std::function<void(Result<void>)> data_waiter;
  std::function<void(Result<control::SubmitView>)> end_waiter;
  bool finishing = false;

  Submission() = default;
  Submission(const Submission&) = delete;
  Submission& operator=(const Submission&) = delete;
  ~Submission() {
    if (assembling != nullptr) *assembling -= whole_bytes;
  }
};

// A finished job's output on its way out: shard blocks in order, each a
// stored matrix read chunk by chunk.
struct Node::ResultStream {
  std::vector<std::string> shard_outputs;  // manifest ids (hex), in row order
  std::vector<std::string> inputs;         // A's and B's manifest ids (hex)
  std::vector<std::uint64_t> shard_rows;
  std::uint64_t cols = 0;
  std::size_t shard = 0;
  std::optional<store::MatrixManifest> manifest;  // of `shard`, once fetched
  std::shared_ptr<const FloatBuffer> values;      // of `shard`, when in the matrix cache
  std::size_t chunk = 0;
  // The client's request for the next piece, while it is being fetched;
  // answered once, by the fetch or by shutdown (fail_job_calls).
  std::function<void(Result<std::optional<std::string>>)> waiting;
  void answer(Result<std::optional<std::string>> piece) {
    if (auto done = std::exchange(waiting, {})) done(std::move(piece));
  }
};

std::uint32_t Node::default_shard_count(std::uint64_t rows) const {
  // One shard per node heard from lately (and this one): every worker busy.
  const std::size_t workers = 1 + peers_heard_lately();
  return static_cast<std::uint32_t>(std::min<std::uint64_t>({workers, rows, sched::kMaxShards}));
}

void Node::submit_begin(control::SubmitHeader header, std::function<void(Result<std::uint64_t>)> done) {
  boost::asio::post(m_io, [this, header = std::move(header), done = std::move(done)]() mutable {
    if (m_jobs_closed) return done(closed_error());
    if (header.kind != "gemm") {
      return done(make_error(ErrorCode::invalid_argument, "job kind '{}' is unknown (this p2pd runs: gemm)",
                             one_line(header.kind)));
    }
    for (auto dim : {header.a_rows, header.a_cols, header.b_rows, header.b_cols}) {
      if (dim == 0 || dim > sched::kMaxDim) {
        return done(make_error(ErrorCode::invalid_argument, "matrix dimensions must be 1 to {}", sched::kMaxDim));
      }
    }
    if (header.a_cols != header.b_rows) {
      return done(make_error(ErrorCode::invalid_argument, "A is {}x{} and B is {}x{}: A's columns must equal B's rows",
                             header.a_rows, header.a_cols, header.b_rows, header.b_cols));
    }
    const std::uint64_t max_shards = std::min<std::uint64_t>(header.a_rows, sched::kMaxShards);
    if (header.shards > max_shards) {
      return done(make_error(ErrorCode::invalid_argument, "{} shards asked for; at most {} for {} rows", header.shards,
                             max_shards, header.a_rows));
    }
    if (header.max_attempts > sched::kMaxAttemptsLimit) {
      return done(make_error(ErrorCode::invalid_argument, "max attempts is at most {}", sched::kMaxAttemptsLimit));
    }
    if (m_submissions.size() >= kMaxSubmissions) {
      return done(make_error(ErrorCode::unavailable, "{} submissions are already in progress; try again later",
                             m_submissions.size()));
    }
    if (!m_overlay || !m_raft) return done(make_error(ErrorCode::unavailable, "this node has not joined a pool yet"));
    auto submission = std::make_shared<Submission>();
    submission->id = m_next_stream++;
    submission->header = std::move(header);
    submission->header.submitter = one_line(submission->header.submitter).substr(0, sched::kMaxSubmitterBytes);
    submission->shards =
        submission->header.shards != 0 ? submission->header.shards : default_shard_count(submission->header.a_rows);
    const std::array<std::pair<std::uint64_t, std::uint64_t>, 2> shapes{
        std::pair{submission->header.a_rows, submission->header.a_cols},
        std::pair{submission->header.b_rows, submission->header.b_cols}};
    submission->assembling = &m_assembling_bytes;
    for (std::size_t m = 0; m < 2; ++m) {
      auto& manifest = submission->manifests[m];
      manifest.rows = shapes[m].first;
      manifest.cols = shapes[m].second;
      manifest.chunk_rows = store::chunk_rows_for(manifest.cols);
      manifest.chunks.resize((manifest.rows + manifest.chunk_rows - 1) / manifest.chunk_rows);
      // Whole only while all submissions' whole matrices together fit the
      // cache: memory stays bounded however many clients submit at once.
      const std::uint64_t bytes = manifest.rows * manifest.row_bytes();
      if (!m_matrix_cache->fits(m_assembling_bytes + bytes)) continue;
      try {
        submission->whole[m] = std::make_shared<FloatBuffer>(manifest.rows * manifest.cols);
      } catch (const std::bad_alloc&) {
        continue;  // chunk by chunk, then
      }
      m_assembling_bytes += bytes;
      submission->whole_bytes += bytes;
    }
    m_submissions.emplace(submission->id, submission);
    log::info(log::Category::sched, "receiving a gemm job from {}: {}x{} by {}x{}, {} shards",
              submission->header.submitter, submission->header.a_rows, submission->header.a_cols,
              submission->header.b_rows, submission->header.b_cols, submission->shards);
    done(submission->id);
  });
}

void Node::submit_data(std::uint64_t id, std::string data, std::function<void(Result<void>)> done) {
  boost::asio::post(m_io, [this, id, data = std::move(data), done = std::move(done)]() mutable {
    auto it = m_submissions.find(id);
    if (it == m_submissions.end()) return done(make_error(ErrorCode::not_found, "the submission is gone"));
    auto submission = it->second;
    if (submission->error) return done(*submission->error);
    std::string_view rest(data);
    while (!rest.empty()) {
      if (submission->matrix >= 2) {
        Error error = make_error(ErrorCode::invalid_argument, "more data than the header announced");
        fail_submission(submission, error);
        return done(error);
      }
      const int matrix = submission->matrix;
      const std::size_t chunk = submission->chunk;
      const auto& manifest = submission->manifests[matrix];
      const std::uint64_t want = manifest.rows_in(chunk) * manifest.row_bytes();
      const std::size_t take = std::min<std::uint64_t>(rest.size(), want - submission->filled);
      const auto& whole = submission->whole[matrix];
      const std::uint64_t chunk_offset = manifest.first_row(chunk) * manifest.row_bytes();
      if (whole) {
        std::memcpy(whole->bytes() + chunk_offset + submission->filled, rest.data(), take);
      } else {
        if (submission->pending.empty()) submission->pending.reserve(want);
        submission->pending.append(rest.substr(0, take));
      }
      submission->filled += take;
      rest.remove_prefix(take);
      if (submission->filled < want) break;
      submission->filled = 0;
      ++submission->in_flight;
      auto stored = [this, submission, matrix, chunk](Result<store::BlobId> blob) {
        on_submission_chunk(submission, matrix, chunk, std::move(blob));
      };
      if (whole) {
        m_transfer->store_in_matrix(SharedBytes{whole, std::string_view(whole->bytes() + chunk_offset, want)},
                                    std::move(stored));
      } else {
        m_transfer->store(std::exchange(submission->pending, {}), std::move(stored));
      }
      if (++submission->chunk == manifest.chunks.size()) {
        ++submission->matrix;
        submission->chunk = 0;
      }
    }
    if (submission->in_flight < kSubmitWindow) return done({});
    submission->data_waiter = std::move(done);  // answered when a chunk is stored
  });
}

void Node::on_submission_chunk(const std::shared_ptr<Submission>& submission, int matrix, std::size_t chunk,
                               Result<store::BlobId> id) {
  --submission->in_flight;
  if (submission->error) return;
  if (!id) {
    return fail_submission(submission,
                           make_error(id.error().code, "storing the job's data failed: {}", id.error().message));
  }
  submission->manifests[matrix].chunks[chunk] = *id;
  if (submission->data_waiter && submission->in_flight < kSubmitWindow) std::exchange(submission->data_waiter, {})({});
  if (submission->end_waiter && submission->in_flight == 0 && !submission->finishing) finish_submission(submission);
}

void Node::fail_submission(const std::shared_ptr<Submission>& submission, const Error& error) {
  if (!submission->error) submission->error = error;
  if (submission->data_waiter) std::exchange(submission->data_waiter, {})(error);
  if (submission->end_waiter) std::exchange(submission->end_waiter, {})(error);
  m_submissions.erase(submission->id);
}

void Node::submit_end(std::uint64_t id, std::function<void(Result<control::SubmitView>)> done) {
  boost::asio::post(m_io, [this, id, done = std::move(done)]() mutable {
    auto it = m_submissions.find(id);
    if (it == m_submissions.end()) return done(make_error(ErrorCode::not_found, "the submission is gone"));
    auto submission = it->second;
    if (submission->error) return done(*submission->error);
    if (submission->matrix < 2) {
      Error error = make_error(ErrorCode::invalid_argument, "the input ended early: {} was not complete",
                               submission->matrix == 0 ? "A" : "B");
      fail_submission(submission, error);
      return done(error);
    }
    submission->end_waiter = std::move(done);
    if (submission->in_flight == 0) finish_submission(submission);
  });
}

void Node::finish_submission(const std::shared_ptr<Submission>& submission) {
  submission->finishing = true;
  // The manifests, then the job itself through Raft.
  m_transfer->store(store::encode_manifest(submission->manifests[0]), [this, submission](Result<store::BlobId> a) {
    if (submission->error) return;
    if (!a) return fail_submission(submission, a.error());
    m_transfer->store(store::encode_manifest(submission->manifests[1]),
                      [this, submission, a = *a](Result<store::BlobId> b) {
                        if (submission->error) return;
                        if (!b) return fail_submission(submission, b.error());
                        // Every chunk is stored: the matrices are what the
                        // manifests name, ready for the worker.
                        const std::array<store::BlobId, 2> ids{a, *b};
                        for (std::size_t m = 0; m < 2; ++m) {
                          auto whole = std::exchange(submission->whole[m], nullptr);
                          if (!whole) continue;
                          // The cache's budget counts it from here on.
                          const std::uint64_t bytes = whole->size_bytes();
                          m_assembling_bytes -= bytes;
                          submission->whole_bytes -= bytes;
                          m_matrix_cache->insert(ids[m], {submission->manifests[m], std::move(whole)});
                        }
                        sched::JobSpec spec;
                        spec.job_id = fmt::format("{:016x}{:016x}", m_job_rng.next(), m_job_rng.next());
                        spec.kind = "gemm";
                        spec.submitted_at_ms = now_unix_ms();
                        spec.submitter = submission->header.submitter;
                        spec.a = sched::MatrixInput{a.hex(), static_cast<std::uint32_t>(submission->header.a_rows),
                                                    static_cast<std::uint32_t>(submission->header.a_cols)};
                        spec.b = sched::MatrixInput{b->hex(), static_cast<std::uint32_t>(submission->header.b_rows),
                                                    static_cast<std::uint32_t>(submission->header.b_cols)};
                        spec.shards = submission->shards;
                        spec.max_attempts = submission->header.max_attempts;
                        const std::string job_id = spec.job_id;
                        propose_until_applied(sched::encode_submit(spec), job_id, PendingProposal::Until::exists,
                                              [this, submission, job_id](Result<void> committed) {
                                                if (submission->error) return;
                                                if (!committed) return fail_submission(submission, committed.error());
                                                trace_local("job submitted", job_id);
                                                log::info(log::Category::sched, "job {} committed ({} shards, from {})",
                                                          job_id, submission->shards, submission->header.submitter);
                                                auto done = std::exchange(submission->end_waiter, {});
                                                m_submissions.erase(submission->id);
                                                if (done) done(control::SubmitView{job_id, submission->shards});
                                              });
                      });
  });
}

void Node::submit_abort(std::uint64_t id) {
  boost::asio::post(m_io, [this, id] {
    auto it = m_submissions.find(id);
    if (it == m_submissions.end()) return;
    log::info(log::Category::sched, "a submission was abandoned by its client");
    fail_submission(it->second, make_error(ErrorCode::unavailable, "the client went away"));
  });
}

// --- proposals to the leader -------------------------------------------------

void Node::propose_until_applied(std::string command, std::string job_id, PendingProposal::Until until,
                                 std::function<void(Result<void>)> done) {
  const auto now = Clock::now();
  send_proposal(command, job_id);
  m_pending_proposals.push_back(PendingProposal{std::move(command), std::move(job_id), until,
                                                now + kSubmitCommitTimeout, now + kProposalRetryInterval,
                                                std::move(done)});
}

void Node::send_proposal(const std::string& command, const std::string& job_id) {
  if (is_leader()) return propose_local(command);
  auto addr = leader_addr();
  if (!addr) return;  // no leader known yet: retried
  proto::JobProposal proposal;
  proposal.set_from_id(std::string(m_identity.id.bytes().begin(), m_identity.id.bytes().end()));
  proposal.set_command(command);
  const std::string stamp = m_tracer ? m_tracer->on_send("proposed to the leader", job_id) : std::string();
  m_peer_client->job_propose(
      *addr, proposal, kJobCallTimeout,
      [](Result<proto::JobProposalReply> reply) {
        if (!reply) {
          log::debug(log::Category::sched, "proposal to the leader failed: {}", reply.error().message);
        } else if (!reply->accepted()) {
          log::debug(log::Category::sched, "the leader refused a proposal: {}", reply->error());
        }
      },
      stamp);
}

void Node::on_job_proposal(net::JobProposalIn proposal, std::function<void(net::ProposalAnswer)> done) {
  boost::asio::post(m_io, [this, proposal = std::move(proposal), done = std::move(done)] {
    net::ProposalAnswer answer;
    if (m_raft) answer.leader = m_raft->leader();
    if (!is_leader()) {
      answer.error = "not the leader";
    } else if (!sched::is_client_command(proposal.command)) {
      answer.error = "only submit and cancel may be proposed by peers";
      log::warn(log::Category::sched, "{} proposed a command peers may not propose", proposal.from.hex());
    } else if (auto index = m_raft->propose(proposal.command); !index) {
      answer.error = index.error().message;
    } else {
      answer.accepted = true;
      request_raft_pump();
    }
    done(std::move(answer));
  });
}

void Node::tick_jobs() {
  if (m_jobs_closed) return;
  check_pending_proposals();
  check_job_watchers(false);
  tick_worker();
  tick_leader_jobs();
  if (m_ticks % kMemoryTrimTicks == 0) {
    // A job's matrices are read again within seconds of each other; after
    // that they only hold memory.
    m_matrix_cache->drop_idle(kMatrixIdle);
    FloatBuffer::release_idle(kBufferIdle);
    flush_trace();
  }
}

void Node::on_jobs_changed() {
  m_jobs_changed = false;
  if (m_jobs_closed) return;
  check_pending_proposals();
  check_job_watchers(false);
  if (m_raft && !m_leaving) reconcile_shard_runs();
  if (is_leader() && m_scheduler) {
    for (const auto& command : m_scheduler->plan(m_jobs, now_unix_ms())) propose_local(command);
  }
}

void Node::check_pending_proposals() {
  const auto now = Clock::now();
  std::vector<std::function<void(Result<void>)>> ready;
  std::vector<std::pair<std::function<void(Result<void>)>, Error>> expired;
  std::erase_if(m_pending_proposals, [&](PendingProposal& p) {
    const sched::Job* job = m_jobs.find(p.job_id);
    const bool applied = job != nullptr && (p.until == PendingProposal::Until::exists || is_finished(job->state));
    if (applied) {
      ready.push_back(std::move(p.done));
      return true;
    }
    if (now >= p.deadline) {
      expired.emplace_back(std::move(p.done),
                           make_error(ErrorCode::timed_out, "the pool did not commit the request within {} s{}",
                                      kSubmitCommitTimeout.count(),
                                      m_raft && m_raft->leader() ? "" : " (no leader is known: is a majority up?)"));
      return true;
    }
    if (now >= p.next_try) {
      p.next_try = now + kProposalRetryInterval;
      send_proposal(p.command, p.job_id);
    }
    return false;
  });
  for (auto& done : ready) done({});
  for (auto& [done, error] : expired) done(error);
}

void Node::check_job_watchers(bool all_expired) {
  const auto now = Clock::now();
  std::vector<std::pair<std::function<void(Result<control::JobView>)>, Result<control::JobView>>> answers;
  std::erase_if(m_job_watchers, [&](JobWatcher& w) {
    const sched::Job* job = m_jobs.find(w.job_id);
    if (job == nullptr) {
      answers.emplace_back(std::move(w.done), make_error(ErrorCode::not_found, "job {} is gone", w.job_id));
      return true;
    }
    const auto done_count = static_cast<std::uint32_t>(std::count_if(
        job->shards.begin(), job->shards.end(), [](const auto& s) { return s.state == sched::ShardState::done; }));
    if (all_expired || now >= w.deadline || sched::to_string(job->state) != w.wait.known_state ||
        done_count != w.wait.known_shards_done) {
      answers.emplace_back(std::move(w.done), view_of(*job));
      return true;
    }
    return false;
  });
  for (auto& [done, answer] : answers) done(std::move(answer));
}

void Node::fail_job_calls(const Error& error) {
  m_jobs_closed = true;
  check_job_watchers(/*all_expired=*/true);
  auto submissions = m_submissions;
  for (auto& [id, submission] : submissions) fail_submission(submission, error);
  auto proposals = std::exchange(m_pending_proposals, {});
  for (auto& p : proposals) p.done(error);
  for (auto& [stream_id, stream] : m_result_streams) stream->answer(error);
}

// --- queries -----------------------------------------------------------------

void Node::list_jobs(std::function<void(std::vector<control::JobSummaryView>)> done) {
  boost::asio::post(m_io, [this, done = std::move(done)] {
    std::vector<control::JobSummaryView> out;
    for (const sched::Job* job : m_jobs.jobs()) {
      const auto shards_done = static_cast<std::uint32_t>(std::count_if(
          job->shards.begin(), job->shards.end(), [](const auto& s) { return s.state == sched::ShardState::done; }));
      out.push_back(control::JobSummaryView{job->job_id, job->kind, std::string(sched::to_string(job->state)),
                                            job->submitted_at_ms / 1000, shards_done,
                                            static_cast<std::uint32_t>(job->shards.size())});
    }
    done(std::move(out));
  });
}

void Node::get_job(std::string id, control::JobWait wait, std::function<void(Result<control::JobView>)> done) {
  boost::asio::post(m_io, [this, id = std::move(id), wait = std::move(wait), done = std::move(done)]() mutable {
    auto job = m_jobs.find_by_prefix(id);
    if (!job) return done(job.error());
    if (wait.wait_ms == 0 || m_jobs_closed || m_job_watchers.size() >= kMaxJobWatchers) return done(view_of(**job));
    const auto limit = std::min(std::chrono::milliseconds(wait.wait_ms), kMaxJobWait);
    m_job_watchers.push_back(JobWatcher{(*job)->job_id, std::move(wait), Clock::now() + limit, std::move(done)});
    check_job_watchers(false);  // answers at once if it already differs
  });
}

void Node::cancel_job(std::string id, std::function<void(Result<control::JobView>)> done) {
  boost::asio::post(m_io, [this, id = std::move(id), done = std::move(done)]() mutable {
    if (m_jobs_closed) return done(closed_error());
    auto job = m_jobs.find_by_prefix(id);
    if (!job) return done(job.error());
    if (sched::is_finished((*job)->state)) return done(view_of(**job));  // nothing to do: say how it ended
    const std::string job_id = (*job)->job_id;
    if (m_pending_proposals.size() >= kMaxPendingProposals) {
      return done(make_error(ErrorCode::unavailable, "{} requests are already waiting on the pool; try again later",
                             m_pending_proposals.size()));
    }
    // Answered once the job is finished in this replica: cancelled, or it
    // ended on its own first.
    propose_until_applied(sched::encode_cancel(job_id), job_id, PendingProposal::Until::finished,
                          [this, job_id, done = std::move(done)](Result<void> applied) {
                            if (!applied) return done(applied.error());
                            const sched::Job* current = m_jobs.find(job_id);
                            if (current == nullptr) {
                              return done(make_error(ErrorCode::not_found, "job {} is gone", job_id));
                            }
                            done(view_of(*current));
                          });
  });
}

// --- results -----------------------------------------------------------------

void Node::result_begin(std::string id, std::function<void(Result<control::ResultStreamView>)> done) {
  boost::asio::post(m_io, [this, id = std::move(id), done = std::move(done)] {
    if (m_jobs_closed) return done(closed_error());
    auto found = m_jobs.find_by_prefix(id);
    if (!found) return done(found.error());
    const sched::Job& job = **found;
    if (job.state != sched::JobState::done) {
      const auto shards_done = std::count_if(job.shards.begin(), job.shards.end(),
                                             [](const auto& s) { return s.state == sched::ShardState::done; });
      if (job.state == sched::JobState::failed) {
        return done(make_error(ErrorCode::invalid_argument, "job {} failed: {}", job.job_id, job.error));
      }
      return done(make_error(ErrorCode::invalid_argument, "job {} is {} ({} of {} shards done); it has no result yet",
                             job.job_id, sched::to_string(job.state), shards_done, job.shards.size()));
    }
    if (m_result_streams.size() >= kMaxResultStreams) {
      return done(make_error(ErrorCode::unavailable, "{} results are already being read; try again later",
                             m_result_streams.size()));
    }
    auto stream = std::make_shared<ResultStream>();
    for (const auto& shard : job.shards) {
      stream->shard_outputs.push_back(shard.output_ref);
      stream->shard_rows.push_back(shard.row_end - shard.row_begin);
    }
    stream->cols = job.b.cols;
    stream->inputs = {job.a.ref, job.b.ref};
    const std::uint64_t id_value = m_next_stream++;
    m_result_streams.emplace(id_value, stream);
    done(control::ResultStreamView{id_value, job.a.rows, job.b.cols});
  });
}

void Node::result_next(std::uint64_t id, std::function<void(Result<std::optional<std::string>>)> done) {
  boost::asio::post(m_io, [this, id, done = std::move(done)]() mutable {
    auto it = m_result_streams.find(id);
    if (it == m_result_streams.end()) return done(make_error(ErrorCode::not_found, "the result stream is gone"));
    if (m_jobs_closed) return done(closed_error());
    auto stream = it->second;
    if (stream->shard >= stream->shard_outputs.size()) {
      // Read to the end: the job is over here, and its matrices need not
      // wait in memory (their blocks go to the next job's buffers). A second
      // read of the result comes from the store.
      for (const auto* refs : {&stream->inputs, &stream->shard_outputs}) {
        for (const auto& ref : *refs) {
          if (auto blob = store::BlobId::from_hex(ref)) m_matrix_cache->drop(*blob);
        }
      }
      return done(std::optional<std::string>());
    }
    if (stream->waiting) return done(make_error(ErrorCode::invalid_argument, "a read is already in progress"));
    stream->waiting = std::move(done);
    auto read_chunk = [this, stream]() {
      const auto& manifest = *stream->manifest;
      const std::size_t chunk = stream->chunk;
      const std::uint64_t expected = manifest.rows_in(chunk) * manifest.row_bytes();
      auto next = [stream]() {
        if (++stream->chunk == stream->manifest->chunks.size()) {
          ++stream->shard;
          stream->chunk = 0;
          stream->manifest.reset();
          stream->values.reset();
        }
      };
      if (stream->values) {  // the block is in memory: no store read
        std::string bytes(stream->values->bytes() + manifest.first_row(chunk) * manifest.row_bytes(), expected);
        next();
        return stream->answer(std::optional<std::string>(std::move(bytes)));
      }
      m_transfer->fetch(manifest.chunks[chunk], [stream, expected, next](Result<BlobTransfer::Bytes> bytes) {
        if (!stream->waiting) return;  // answered already (shutdown)
        if (!bytes) return stream->answer(bytes.error());
        if ((*bytes)->size() != expected) {
          return stream->answer(
              make_error(ErrorCode::corrupt, "an output chunk of shard {} has the wrong size", stream->shard));
        }
        next();
        stream->answer(std::optional<std::string>(**bytes));
      });
    };
    if (stream->manifest) return read_chunk();
    auto ref = store::BlobId::from_hex(stream->shard_outputs[stream->shard]);
    if (!ref) return stream->answer(make_error(ErrorCode::corrupt, "shard {} has no valid output", stream->shard));
    auto check_shape = [stream](const store::MatrixManifest& manifest) -> Result<void> {
      if (manifest.rows != stream->shard_rows[stream->shard] || manifest.cols != stream->cols) {
        return make_error(ErrorCode::corrupt, "the output of shard {} is {}x{}, expected {}x{}", stream->shard,
                          manifest.rows, manifest.cols, stream->shard_rows[stream->shard], stream->cols);
      }
      return {};
    };
    if (auto cached = m_matrix_cache->find(*ref)) {
      if (auto shaped = check_shape(cached->manifest); !shaped) return stream->answer(shaped.error());
      stream->manifest = std::move(cached->manifest);
      stream->values = std::move(cached->values);
      return read_chunk();
    }
    m_transfer->fetch_manifest(*ref, [stream, read_chunk, check_shape](Result<store::MatrixManifest> manifest) {
      if (!stream->waiting) return;
      if (!manifest) return stream->answer(manifest.error());
      if (auto shaped = check_shape(*manifest); !shaped) return stream->answer(shaped.error());
      stream->manifest = std::move(*manifest);
      read_chunk();
    });
  });
}

void Node::result_end(std::uint64_t id) {
  boost::asio::post(m_io, [this, id] { m_result_streams.erase(id); });
}

}  // namespace p2pd::node
