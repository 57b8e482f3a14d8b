#include "daemon/sched/job_table.hpp"

#include <algorithm>
#include <cassert>
#include <climits>
#include <iterator>
#include <utility>

#include <fmt/format.h>

#include "common/one_line.hpp"
#include "proto/jobs.pb.h"

namespace p2pd::sched {

namespace {

constexpr std::uint32_t kSnapshotFormat = 1;
// How much of a rejected string an error line quotes.
constexpr std::size_t kQuotedBytes = 64;

// A peer's free text as the table keeps it: one line, bounded.
std::string bounded_text(std::string_view text) {
  return cut_utf8(one_line(text), kMaxErrorBytes);
}

// A rejected value as an error line shows it.
std::string quoted(std::string_view text) {
  std::string shown = one_line(text);
  if (shown.size() <= kQuotedBytes) return fmt::format("'{}'", shown);
  return fmt::format("'{}...'", cut_utf8(std::move(shown), kQuotedBytes));
}

bool is_lower_hex(std::string_view text, std::size_t digits) {
  return text.size() == digits &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool is_one_line(std::string_view text) {
  return std::none_of(text.begin(), text.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
  });
}

Result<void> check_job_id(std::string_view job_id) {
  if (!is_lower_hex(job_id, kJobIdHexDigits)) {
    return make_error(ErrorCode::invalid_argument, "job id {} is not {} lowercase hex digits", quoted(job_id),
                      kJobIdHexDigits);
  }
  return {};
}

Result<void> check_peer(std::string_view peer) {
  if (!is_lower_hex(peer, kPeerHexDigits)) {
    return make_error(ErrorCode::invalid_argument, "peer {} is not a node id of {} lowercase hex digits", quoted(peer),
                      kPeerHexDigits);
  }
  return {};
}

// Content addresses are printable ASCII without spaces, so they can be
// printed, logged and used in a path without escaping.
Result<void> check_ref(std::string_view what, std::string_view ref) {
  if (ref.empty() || ref.size() > kMaxRefBytes) {
    return make_error(ErrorCode::invalid_argument, "{} ref must be 1 to {} characters, got {}", what, kMaxRefBytes,
                      ref.size());
  }
  if (!std::all_of(ref.begin(), ref.end(), [](char c) { return c > ' ' && c < 0x7f; })) {
    return make_error(ErrorCode::invalid_argument, "{} ref {} may hold only printable ASCII without spaces", what,
                      quoted(ref));
  }
  return {};
}

Result<void> check_input(std::string_view what, const MatrixInput& input) {
  if (auto ref = check_ref(what, input.ref); !ref) return ref.error();
  if (input.rows < 1 || input.rows > kMaxDim || input.cols < 1 || input.cols > kMaxDim) {
    return make_error(ErrorCode::invalid_argument, "{} is {}x{}: dimensions must be 1 to {}", what, input.rows,
                      input.cols, kMaxDim);
  }
  return {};
}

// What submit checks; restore checks a stored job's definition the same way,
// with its resolved max_attempts.
Result<void> check_spec(const JobSpec& spec) {
  if (auto id = check_job_id(spec.job_id); !id) return id.error();
  if (spec.kind != "gemm") {
    return make_error(ErrorCode::invalid_argument, "job kind {} is not supported: only 'gemm' is", quoted(spec.kind));
  }
  if (spec.submitter.empty() || spec.submitter.size() > kMaxSubmitterBytes || !is_one_line(spec.submitter)) {
    return make_error(ErrorCode::invalid_argument, "submitter {} must be 1 to {} bytes on one line",
                      quoted(spec.submitter), kMaxSubmitterBytes);
  }
  if (auto a = check_input("input a", spec.a); !a) return a.error();
  if (auto b = check_input("input b", spec.b); !b) return b.error();
  if (spec.a.cols != spec.b.rows) {
    return make_error(ErrorCode::invalid_argument, "shapes do not chain: a is {}x{}, b is {}x{} ({} != {})",
                      spec.a.rows, spec.a.cols, spec.b.rows, spec.b.cols, spec.a.cols, spec.b.rows);
  }
  const std::uint32_t most_shards = std::min(kMaxShards, spec.a.rows);
  if (spec.shards < 1 || spec.shards > most_shards) {
    return make_error(ErrorCode::invalid_argument, "{} shards asked for: a job of {} rows takes 1 to {}", spec.shards,
                      spec.a.rows, most_shards);
  }
  if (spec.max_attempts > kMaxAttemptsLimit) {
    return make_error(ErrorCode::invalid_argument, "max attempts {} is over the limit of {}", spec.max_attempts,
                      kMaxAttemptsLimit);
  }
  return {};
}

std::vector<Shard> cut_shards(std::uint32_t rows, std::uint32_t count) {
  std::vector<Shard> shards(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    const RowRange range = shard_rows(rows, count, i);
    shards[i].index = i;
    shards[i].row_begin = range.begin;
    shards[i].row_end = range.end;
  }
  return shards;
}

MatrixInput from_proto(const InputRef& input) {
  return MatrixInput{input.ref(), input.rows(), input.cols()};
}

void to_proto(const MatrixInput& input, InputRef& out) {
  out.set_ref(input.ref);
  out.set_rows(input.rows);
  out.set_cols(input.cols);
}

JobStatus to_proto(JobState state) {
  switch (state) {
    case JobState::queued: return JOB_STATUS_QUEUED;
    case JobState::running: return JOB_STATUS_RUNNING;
    case JobState::done: return JOB_STATUS_DONE;
    case JobState::failed: return JOB_STATUS_FAILED;
    case JobState::cancelled: return JOB_STATUS_CANCELLED;
  }
  return JOB_STATUS_UNSPECIFIED;
}

ShardStatus to_proto(ShardState state) {
  switch (state) {
    case ShardState::pending: return SHARD_STATUS_PENDING;
    case ShardState::assigned: return SHARD_STATUS_ASSIGNED;
    case ShardState::done: return SHARD_STATUS_DONE;
  }
  return SHARD_STATUS_UNSPECIFIED;
}

// Proto3 enums are open: a stored value may be any int.
Result<JobState> job_state_from_proto(int value) {
  switch (value) {
    case JOB_STATUS_QUEUED: return JobState::queued;
    case JOB_STATUS_RUNNING: return JobState::running;
    case JOB_STATUS_DONE: return JobState::done;
    case JOB_STATUS_FAILED: return JobState::failed;
    case JOB_STATUS_CANCELLED: return JobState::cancelled;
    default: return make_error(ErrorCode::corrupt, "unknown job state {}", value);
  }
}

Result<ShardState> shard_state_from_proto(int value) {
  switch (value) {
    case SHARD_STATUS_PENDING: return ShardState::pending;
    case SHARD_STATUS_ASSIGNED: return ShardState::assigned;
    case SHARD_STATUS_DONE: return ShardState::done;
    default: return make_error(ErrorCode::corrupt, "unknown shard state {}", value);
  }
}

// --- Commands on one live job: each checks everything before changing
// anything, so a refused command leaves the job as it was. ---

Result<Shard*> shard_of(Job& job, std::uint32_t index) {
  if (index >= job.shards.size()) {
    return make_error(ErrorCode::invalid_argument, "job {} has no shard {}: it has {}", job.job_id, index,
                      job.shards.size());
  }
  return &job.shards[index];
}

// The shard a report is about, which must be assigned to the reporter.
Result<Shard*> assigned_shard(Job& job, std::uint32_t index, std::string_view peer) {
  auto shard = shard_of(job, index);
  if (!shard) return shard.error();
  if (auto valid = check_peer(peer); !valid) return valid.error();
  Shard& s = **shard;
  if (s.state != ShardState::assigned) {
    return make_error(ErrorCode::invalid_argument, "shard {} of job {} is {}, not assigned", index, job.job_id,
                      to_string(s.state));
  }
  if (s.peer != peer) {
    return make_error(ErrorCode::permission_denied, "shard {} of job {} is assigned to {}, not to {}", index,
                      job.job_id, s.peer, peer);
  }
  return &s;
}

Result<void> assign(Job& job, const AssignShard& command) {
  auto shard = shard_of(job, command.index());
  if (!shard) return shard.error();
  if (auto peer = check_peer(command.peer()); !peer) return peer.error();
  Shard& s = **shard;
  if (s.state != ShardState::pending) {
    return make_error(ErrorCode::invalid_argument, "shard {} of job {} is {}, not pending", s.index, job.job_id,
                      to_string(s.state));
  }
  // A pending shard of a live job always has attempts left: the failure that
  // used up the last one failed the job.
  s.state = ShardState::assigned;
  s.peer = command.peer();
  s.attempts += 1;
  s.assigned_at_ms = command.at_ms();
  job.state = JobState::running;
  return {};
}

Result<void> shard_done(Job& job, const ShardDone& command) {
  auto shard = assigned_shard(job, command.index(), command.peer());
  if (!shard) return shard.error();
  if (auto ref = check_ref("output", command.output_ref()); !ref) return ref.error();
  Shard& s = **shard;
  s.state = ShardState::done;
  s.output_ref = command.output_ref();
  const bool all_done =
      std::all_of(job.shards.begin(), job.shards.end(), [](const Shard& x) { return x.state == ShardState::done; });
  if (all_done) job.state = JobState::done;
  return {};
}

Result<void> shard_failed(Job& job, const ShardFailed& command) {
  auto shard = assigned_shard(job, command.index(), command.peer());
  if (!shard) return shard.error();
  Shard& s = **shard;
  const std::string reason = command.reason().empty() ? std::string("no reason given") : bounded_text(command.reason());
  if (s.attempts >= job.max_attempts) {
    job.state = JobState::failed;
    job.error = cut_utf8(fmt::format("shard {} failed {} of {} attempts, last on peer {}: {}", s.index, s.attempts,
                                     job.max_attempts, s.peer, reason),
                         kMaxErrorBytes);
  }
  s.state = ShardState::pending;
  s.peer.clear();
  s.last_error = reason;
  return {};
}

// --- Restore: a stored job must be one that apply() could have built. ---

Result<void> check_shard(const Job& job, const Shard& shard, std::uint32_t index) {
  if (shard.index != index) return make_error(ErrorCode::corrupt, "shard {} is numbered {}", index, shard.index);
  const RowRange rows = shard_rows(job.a.rows, static_cast<std::uint32_t>(job.shards.size()), index);
  if (shard.row_begin != rows.begin || shard.row_end != rows.end) {
    return make_error(ErrorCode::corrupt, "shard {} covers rows [{}, {}), not [{}, {})", index, shard.row_begin,
                      shard.row_end, rows.begin, rows.end);
  }
  if (shard.attempts > job.max_attempts) {
    return make_error(ErrorCode::corrupt, "shard {} has {} attempts, over the job's {}", index, shard.attempts,
                      job.max_attempts);
  }
  if (shard.last_error.size() > kMaxErrorBytes || !is_one_line(shard.last_error)) {
    return make_error(ErrorCode::corrupt, "shard {} has a malformed last error", index);
  }
  switch (shard.state) {
    case ShardState::pending:
      if (!shard.peer.empty() || !shard.output_ref.empty()) {
        return make_error(ErrorCode::corrupt, "pending shard {} has a peer or an output", index);
      }
      // Only the failure that failed the job leaves a pending shard with no
      // attempts left.
      if (job.state != JobState::failed && shard.attempts >= job.max_attempts) {
        return make_error(ErrorCode::corrupt, "pending shard {} of a {} job has no attempts left", index,
                          to_string(job.state));
      }
      break;
    case ShardState::assigned:
    case ShardState::done:
      if (auto peer = check_peer(shard.peer); !peer) {
        return make_error(ErrorCode::corrupt, "shard {}: {}", index, peer.error().message);
      }
      if (shard.attempts < 1)
        return make_error(ErrorCode::corrupt, "shard {} is {} with no attempts", index, to_string(shard.state));
      if (shard.state == ShardState::assigned && !shard.output_ref.empty()) {
        return make_error(ErrorCode::corrupt, "assigned shard {} has an output", index);
      }
      if (shard.state == ShardState::done) {
        if (auto ref = check_ref("output", shard.output_ref); !ref) {
          return make_error(ErrorCode::corrupt, "shard {}: {}", index, ref.error().message);
        }
      }
      break;
  }
  return {};
}

Result<void> check_job(const Job& job) {
  const JobSpec spec{job.job_id,
                     job.kind,
                     job.submitted_at_ms,
                     job.submitter,
                     job.a,
                     job.b,
                     static_cast<std::uint32_t>(job.shards.size()),
                     job.max_attempts};
  if (job.max_attempts < 1) return make_error(ErrorCode::corrupt, "max attempts is 0");
  if (auto valid = check_spec(spec); !valid) return make_error(ErrorCode::corrupt, "{}", valid.error().message);
  for (std::uint32_t i = 0; i < job.shards.size(); ++i) {
    if (auto shard = check_shard(job, job.shards[i], i); !shard) return shard.error();
  }
  const auto count = [&](auto&& pred) { return std::count_if(job.shards.begin(), job.shards.end(), pred); };
  const auto done = count([](const Shard& s) { return s.state == ShardState::done; });
  const auto tried = count([](const Shard& s) { return s.attempts > 0; });
  const auto all = static_cast<std::ptrdiff_t>(job.shards.size());
  bool consistent = true;
  switch (job.state) {
    case JobState::queued: consistent = tried == 0; break;
    case JobState::running: consistent = tried > 0 && done < all; break;
    case JobState::done: consistent = done == all; break;
    case JobState::failed:
      consistent =
          count([&](const Shard& s) { return s.state == ShardState::pending && s.attempts == job.max_attempts; }) > 0;
      break;
    case JobState::cancelled: consistent = done < all; break;
  }
  if (!consistent) {
    return make_error(ErrorCode::corrupt, "a {} job cannot have {} of {} shards done and {} tried",
                      to_string(job.state), done, all, tried);
  }
  const bool has_error = !job.error.empty();
  if (has_error != (job.state == JobState::failed)) {
    return make_error(ErrorCode::corrupt, "a {} job {} an error", to_string(job.state),
                      has_error ? "cannot have" : "must have");
  }
  if (job.error.size() > kMaxErrorBytes || !is_one_line(job.error)) {
    return make_error(ErrorCode::corrupt, "malformed error text");
  }
  return {};
}

Result<Job> job_from_record(const JobRecord& record) {
  // Checked before anything is sized from it.
  if (record.shards_size() > static_cast<int>(kMaxShards)) {
    return make_error(ErrorCode::corrupt, "{} shards, over the limit of {}", record.shards_size(), kMaxShards);
  }
  auto state = job_state_from_proto(record.state());
  if (!state) return state.error();
  Job job;
  job.job_id = record.job_id();
  job.kind = record.kind();
  job.state = *state;
  job.submitted_at_ms = record.submitted_at_ms();
  job.submitter = record.submitter();
  job.a = from_proto(record.a());
  job.b = from_proto(record.b());
  job.max_attempts = record.max_attempts();
  job.error = record.error();
  job.shards.reserve(static_cast<std::size_t>(record.shards_size()));
  for (const ShardRecord& stored : record.shards()) {
    auto shard_state = shard_state_from_proto(stored.state());
    if (!shard_state) return shard_state.error();
    Shard shard;
    shard.index = stored.index();
    shard.row_begin = stored.row_begin();
    shard.row_end = stored.row_end();
    shard.state = *shard_state;
    shard.peer = stored.peer();
    shard.attempts = stored.attempts();
    shard.assigned_at_ms = stored.assigned_at_ms();
    shard.output_ref = stored.output_ref();
    shard.last_error = stored.last_error();
    job.shards.push_back(std::move(shard));
  }
  if (auto valid = check_job(job); !valid) return valid.error();
  return job;
}

void to_record(const Job& job, JobRecord& record) {
  record.set_job_id(job.job_id);
  record.set_kind(job.kind);
  record.set_state(to_proto(job.state));
  record.set_submitted_at_ms(job.submitted_at_ms);
  record.set_submitter(job.submitter);
  to_proto(job.a, *record.mutable_a());
  to_proto(job.b, *record.mutable_b());
  record.set_max_attempts(job.max_attempts);
  record.set_error(job.error);
  for (const Shard& shard : job.shards) {
    ShardRecord& stored = *record.add_shards();
    stored.set_index(shard.index);
    stored.set_row_begin(shard.row_begin);
    stored.set_row_end(shard.row_end);
    stored.set_state(to_proto(shard.state));
    stored.set_peer(shard.peer);
    stored.set_attempts(shard.attempts);
    stored.set_assigned_at_ms(shard.assigned_at_ms);
    stored.set_output_ref(shard.output_ref);
    stored.set_last_error(shard.last_error);
  }
}

std::string encode(const JobCommand& command) {
  return command.SerializeAsString();
}

}  // namespace

std::string_view to_string(JobState state) {
  switch (state) {
    case JobState::queued: return "queued";
    case JobState::running: return "running";
    case JobState::done: return "done";
    case JobState::failed: return "failed";
    case JobState::cancelled: return "cancelled";
  }
  return "unknown";
}

std::string_view to_string(ShardState state) {
  switch (state) {
    case ShardState::pending: return "pending";
    case ShardState::assigned: return "assigned";
    case ShardState::done: return "done";
  }
  return "unknown";
}

RowRange shard_rows(std::uint32_t rows, std::uint32_t shards, std::uint32_t index) {
  assert(shards >= 1 && shards <= rows && index < shards);
  const std::uint32_t base = rows / shards;
  const std::uint32_t longer = rows % shards;  // the first `longer` blocks get one more row
  const std::uint32_t begin = index * base + std::min(index, longer);
  return RowRange{begin, begin + base + (index < longer ? 1 : 0)};
}

std::string encode_submit(const JobSpec& spec) {
  JobCommand command;
  SubmitJob& submit = *command.mutable_submit();
  submit.set_job_id(spec.job_id);
  submit.set_kind(spec.kind);
  submit.set_submitted_at_ms(spec.submitted_at_ms);
  submit.set_submitter(spec.submitter);
  to_proto(spec.a, *submit.mutable_a());
  to_proto(spec.b, *submit.mutable_b());
  submit.set_shards(spec.shards);
  submit.set_max_attempts(spec.max_attempts);
  return encode(command);
}

std::string encode_assign(std::string_view job_id, std::uint32_t index, std::string_view peer, std::uint64_t at_ms) {
  JobCommand command;
  AssignShard& assign = *command.mutable_assign();
  assign.set_job_id(std::string(job_id));
  assign.set_index(index);
  assign.set_peer(std::string(peer));
  assign.set_at_ms(at_ms);
  return encode(command);
}

std::string encode_shard_done(std::string_view job_id, std::uint32_t index, std::string_view peer,
                              std::string_view output_ref) {
  JobCommand command;
  ShardDone& done = *command.mutable_shard_done();
  done.set_job_id(std::string(job_id));
  done.set_index(index);
  done.set_peer(std::string(peer));
  done.set_output_ref(std::string(output_ref));
  return encode(command);
}

std::string encode_shard_failed(std::string_view job_id, std::uint32_t index, std::string_view peer,
                                std::string_view reason) {
  JobCommand command;
  ShardFailed& failed = *command.mutable_shard_failed();
  failed.set_job_id(std::string(job_id));
  failed.set_index(index);
  failed.set_peer(std::string(peer));
  failed.set_reason(std::string(reason));
  return encode(command);
}

std::string encode_cancel(std::string_view job_id) {
  JobCommand command;
  command.mutable_cancel()->set_job_id(std::string(job_id));
  return encode(command);
}

std::string with_trace(std::string encoded_command, std::string_view stamp) {
  // A serialized message followed by another is their merge (protobuf
  // encoding): the command gains the field without being decoded, and a
  // stamp already there (a peer's) is replaced, the last one winning.
  JobCommand trace_only;
  trace_only.set_trace(std::string(stamp));
  return encoded_command + trace_only.SerializeAsString();
}

std::optional<CommandSummary> summarize(std::string_view encoded_command) {
  JobCommand command;
  if (encoded_command.size() > static_cast<std::size_t>(INT_MAX) ||
      !command.ParseFromArray(encoded_command.data(), static_cast<int>(encoded_command.size()))) {
    return std::nullopt;
  }
  CommandSummary summary;
  summary.trace = command.trace();
  switch (command.command_case()) {
    case JobCommand::kSubmit:
      summary.job_id = command.submit().job_id();
      summary.what = "submit";
      break;
    case JobCommand::kAssign:
      summary.job_id = command.assign().job_id();
      summary.what =
          fmt::format("assign shard {} to {}", command.assign().index(), command.assign().peer().substr(0, 12));
      break;
    case JobCommand::kShardDone:
      summary.job_id = command.shard_done().job_id();
      summary.what = fmt::format("shard {} done", command.shard_done().index());
      break;
    case JobCommand::kShardFailed:
      summary.job_id = command.shard_failed().job_id();
      summary.what = fmt::format("shard {} failed", command.shard_failed().index());
      break;
    case JobCommand::kCancel:
      summary.job_id = command.cancel().job_id();
      summary.what = "cancel";
      break;
    case JobCommand::COMMAND_NOT_SET: return std::nullopt;
  }
  if (summary.job_id.size() != kJobIdHexDigits) return std::nullopt;
  return summary;
}

bool is_client_command(std::string_view encoded_command) {
  JobCommand command;
  if (encoded_command.size() > static_cast<std::size_t>(INT_MAX) ||
      !command.ParseFromArray(encoded_command.data(), static_cast<int>(encoded_command.size()))) {
    return false;
  }
  return command.command_case() == JobCommand::kSubmit || command.command_case() == JobCommand::kCancel;
}

Result<void> JobTable::apply(std::string_view encoded_command) {
  JobCommand command;
  if (encoded_command.size() > static_cast<std::size_t>(INT_MAX) ||
      !command.ParseFromArray(encoded_command.data(), static_cast<int>(encoded_command.size()))) {
    return make_error(ErrorCode::corrupt, "job command of {} bytes does not decode", encoded_command.size());
  }
  switch (command.command_case()) {
    case JobCommand::kSubmit: {
      const SubmitJob& m = command.submit();
      return submit(JobSpec{m.job_id(), m.kind(), m.submitted_at_ms(), m.submitter(), from_proto(m.a()),
                            from_proto(m.b()), m.shards(), m.max_attempts()});
    }
    case JobCommand::kAssign: {
      auto job = live_job(command.assign().job_id());
      if (!job) return job.error();
      return assign(**job, command.assign());
    }
    case JobCommand::kShardDone: {
      auto job = live_job(command.shard_done().job_id());
      if (!job) return job.error();
      return shard_done(**job, command.shard_done());
    }
    case JobCommand::kShardFailed: {
      auto job = live_job(command.shard_failed().job_id());
      if (!job) return job.error();
      return shard_failed(**job, command.shard_failed());
    }
    case JobCommand::kCancel: {
      auto job = live_job(command.cancel().job_id());
      if (!job) return job.error();
      (*job)->state = JobState::cancelled;
      return {};
    }
    case JobCommand::COMMAND_NOT_SET: break;
  }
  return make_error(ErrorCode::corrupt, "job command names no known command");
}

Result<void> JobTable::submit(JobSpec spec) {
  if (auto valid = check_spec(spec); !valid) return valid.error();
  if (m_by_id.contains(spec.job_id)) {
    return make_error(ErrorCode::already_exists, "job {} already exists", spec.job_id);
  }
  Job job;
  job.job_id = std::move(spec.job_id);
  job.kind = std::move(spec.kind);
  job.submitted_at_ms = spec.submitted_at_ms;
  job.submitter = std::move(spec.submitter);
  job.shards = cut_shards(spec.a.rows, spec.shards);
  job.a = std::move(spec.a);
  job.b = std::move(spec.b);
  job.max_attempts = spec.max_attempts == 0 ? kDefaultMaxAttempts : spec.max_attempts;

  // Make room by evicting the oldest finished jobs, but only once it is
  // known that enough can go: a refused submit changes nothing.
  std::size_t jobs_after = m_jobs.size() + 1;
  std::size_t shards_after = m_shard_count + job.shards.size();
  std::vector<std::uint64_t> evict;
  for (auto it = m_jobs.begin(); it != m_jobs.end() && (jobs_after > kMaxJobs || shards_after > kMaxRetainedShards);
       ++it) {
    if (!is_finished(it->second.state)) continue;
    evict.push_back(it->first);
    jobs_after -= 1;
    shards_after -= it->second.shards.size();
  }
  if (jobs_after > kMaxJobs || shards_after > kMaxRetainedShards) {
    return make_error(ErrorCode::unavailable,
                      "job table full: {} jobs with {} shards held (limits {} and {}) and too few finished to evict",
                      m_jobs.size(), m_shard_count, kMaxJobs, kMaxRetainedShards);
  }
  for (const std::uint64_t seq : evict) erase(seq);
  insert(std::move(job));
  return {};
}

void JobTable::insert(Job job) {
  const std::uint64_t seq = m_next_seq++;
  m_by_id.emplace(job.job_id, seq);
  m_shard_count += job.shards.size();
  m_jobs.emplace(seq, std::move(job));
}

void JobTable::erase(std::uint64_t seq) {
  const auto it = m_jobs.find(seq);
  if (it == m_jobs.end()) return;
  m_shard_count -= it->second.shards.size();
  m_by_id.erase(it->second.job_id);
  m_jobs.erase(it);
}

Result<Job*> JobTable::live_job(std::string_view job_id) {
  if (auto valid = check_job_id(job_id); !valid) return valid.error();
  const auto it = m_by_id.find(job_id);
  if (it == m_by_id.end()) return make_error(ErrorCode::not_found, "no job {}", job_id);
  Job& job = m_jobs.at(it->second);
  if (is_finished(job.state)) {
    return make_error(ErrorCode::invalid_argument, "job {} is {}: a finished job takes no more commands", job_id,
                      to_string(job.state));
  }
  return &job;
}

const Job* JobTable::find(std::string_view job_id) const {
  const auto it = m_by_id.find(job_id);
  return it == m_by_id.end() ? nullptr : &m_jobs.at(it->second);
}

Result<const Job*> JobTable::find_by_prefix(std::string_view prefix) const {
  const bool hex_digits = std::all_of(prefix.begin(), prefix.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
  if (!hex_digits) return make_error(ErrorCode::invalid_argument, "job id {} is not hex", quoted(prefix));
  if (prefix.size() < kMinPrefixHexDigits) {
    return make_error(ErrorCode::invalid_argument, "job id prefix {} is too short: give at least {} hex digits",
                      quoted(prefix), kMinPrefixHexDigits);
  }
  std::string lower(prefix);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char c) { return c >= 'A' && c <= 'F' ? static_cast<char>(c - 'A' + 'a') : c; });
  const auto first = m_by_id.lower_bound(lower);
  auto last = first;
  while (last != m_by_id.end() && last->first.starts_with(lower)) ++last;
  const auto matches = std::distance(first, last);
  if (matches == 0) return make_error(ErrorCode::not_found, "no job matches {}", quoted(lower));
  if (matches > 1) {
    return make_error(ErrorCode::invalid_argument, "job id prefix {} is ambiguous: {} jobs match", quoted(lower),
                      matches);
  }
  return &m_jobs.at(first->second);
}

std::vector<const Job*> JobTable::jobs() const {
  std::vector<const Job*> out;
  out.reserve(m_jobs.size());
  for (const auto& [seq, job] : m_jobs) out.push_back(&job);
  return out;
}

std::string JobTable::snapshot() const {
  JobTableSnapshot snapshot;
  snapshot.set_format(kSnapshotFormat);
  for (const auto& [seq, job] : m_jobs) to_record(job, *snapshot.add_jobs());
  return snapshot.SerializeAsString();
}

Result<JobTable> JobTable::restore(std::string_view bytes) {
  JobTableSnapshot snapshot;
  if (bytes.size() > static_cast<std::size_t>(INT_MAX) ||
      !snapshot.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return make_error(ErrorCode::corrupt, "job table snapshot of {} bytes does not decode", bytes.size());
  }
  if (snapshot.format() != kSnapshotFormat) {
    return make_error(ErrorCode::corrupt, "job table snapshot has format {}; this build reads {}", snapshot.format(),
                      kSnapshotFormat);
  }
  if (static_cast<std::size_t>(snapshot.jobs_size()) > kMaxJobs) {
    return make_error(ErrorCode::corrupt, "job table snapshot holds {} jobs, over the limit of {}",
                      snapshot.jobs_size(), kMaxJobs);
  }
  JobTable table;
  for (int i = 0; i < snapshot.jobs_size(); ++i) {
    const JobRecord& record = snapshot.jobs(i);
    auto job = job_from_record(record);
    if (!job) {
      return make_error(ErrorCode::corrupt, "job table snapshot: job {} ({}): {}", i, quoted(record.job_id()),
                        job.error().message);
    }
    if (table.m_by_id.contains(job->job_id)) {
      return make_error(ErrorCode::corrupt, "job table snapshot: job {} repeats id {}", i, job->job_id);
    }
    if (table.m_shard_count + job->shards.size() > kMaxRetainedShards) {
      return make_error(ErrorCode::corrupt, "job table snapshot holds more than {} shards", kMaxRetainedShards);
    }
    table.insert(std::move(job).value());
  }
  return table;
}

}  // namespace p2pd::sched
