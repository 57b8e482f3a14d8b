#pragma once
// The replicated job table: the deterministic state machine that committed
// Raft entries are applied to (DESIGN.md, "Data flow of a job", step 2; the
// leader's scheduler proposes the commands). Every replica applies the same
// commands in the same order and must end with the same table, so apply()
// reads no clock and no RNG and iterates ordered containers only; the times
// it records travel inside the commands. A command the table refuses is a
// no-op with an error, the same on every replica, and leaves the table
// exactly as it was.
//
// Lifecycle. A job is queued until one of its shards is first assigned, then
// running; done when every shard is done; failed when one shard has used up
// its attempts; cancelled on request. done, failed and cancelled are final:
// commands naming a finished job are refused. A shard is pending (no peer),
// assigned (one peer is computing it) or done (its output is stored).
//
// Attempts are counted when a shard is assigned: `attempts` is the number of
// tries started, so a shard being computed for the first time shows 1. When
// a try fails and that count has reached the job's max_attempts, the job
// fails; otherwise the shard goes back to pending for another peer.
//
// Bounds, so that no command can make a replica's memory grow without end:
// at most kMaxJobs jobs and kMaxRetainedShards shards in all are kept; a
// submit that would pass either evicts the oldest finished jobs, and is
// refused when evicting every finished job would not be enough. Free text
// from peers (a failure's reason) is made one line and cut to
// kMaxErrorBytes.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace p2pd::sched {

inline constexpr std::size_t kMaxJobs = 10000;
// 64 jobs of the largest shard count: bounds the table to a few hundred MB
// even when every string in it is as long as allowed.
inline constexpr std::size_t kMaxRetainedShards = std::size_t{1} << 18;
inline constexpr std::uint32_t kMaxShards = 4096;
inline constexpr std::uint32_t kMaxDim = 65536;
inline constexpr std::uint32_t kDefaultMaxAttempts = 3;
inline constexpr std::uint32_t kMaxAttemptsLimit = 100;
inline constexpr std::size_t kJobIdHexDigits = 32;
inline constexpr std::size_t kPeerHexDigits = 40;
inline constexpr std::size_t kMinPrefixHexDigits = 6;
inline constexpr std::size_t kMaxRefBytes = 128;
inline constexpr std::size_t kMaxSubmitterBytes = 256;
inline constexpr std::size_t kMaxErrorBytes = 512;

enum class JobState { queued, running, done, failed, cancelled };
// The words of CONTRACT.md's `job ID` row.
std::string_view to_string(JobState state);
[[nodiscard]] inline bool is_finished(JobState state) {
  return state == JobState::done || state == JobState::failed || state == JobState::cancelled;
}

enum class ShardState { pending, assigned, done };
std::string_view to_string(ShardState state);

// A matrix operand, by content address.
struct MatrixInput {
  std::string ref;  // 1..kMaxRefBytes printable ASCII characters, no space
  std::uint32_t rows = 0;
  std::uint32_t cols = 0;
  bool operator==(const MatrixInput&) const = default;
};

// Rows [row_begin, row_end) of A, times B.
struct Shard {
  std::uint32_t index = 0;
  std::uint32_t row_begin = 0;
  std::uint32_t row_end = 0;
  ShardState state = ShardState::pending;
  std::string peer;  // the assigned peer's node id (hex); empty while pending
  std::uint32_t attempts = 0;
  std::uint64_t assigned_at_ms = 0;  // the proposer's time of the latest assignment
  std::string output_ref;            // set once done
  std::string last_error;            // the latest failure's reason, if any
  bool operator==(const Shard&) const = default;
};

struct Job {
  std::string job_id;
  std::string kind;
  JobState state = JobState::queued;
  std::uint64_t submitted_at_ms = 0;
  std::string submitter;
  MatrixInput a;
  MatrixInput b;
  std::vector<Shard> shards;
  std::uint32_t max_attempts = kDefaultMaxAttempts;  // resolved: never 0
  std::string error;                                 // set when failed
  bool operator==(const Job&) const = default;
};

// What a submitter asks for; max_attempts 0 means kDefaultMaxAttempts.
struct JobSpec {
  std::string job_id;
  std::string kind = "gemm";
  std::uint64_t submitted_at_ms = 0;
  std::string submitter;
  MatrixInput a;
  MatrixInput b;
  std::uint32_t shards = 1;
  std::uint32_t max_attempts = 0;
};

// The commands, encoded as Raft entry payloads (proto/jobs.proto).
std::string encode_submit(const JobSpec& spec);
std::string encode_assign(std::string_view job_id, std::uint32_t index, std::string_view peer, std::uint64_t at_ms);
std::string encode_shard_done(std::string_view job_id, std::uint32_t index, std::string_view peer,
                              std::string_view output_ref);
std::string encode_shard_failed(std::string_view job_id, std::uint32_t index, std::string_view peer,
                                std::string_view reason);
std::string encode_cancel(std::string_view job_id);

// A command with a trace stamp added (field `trace`), and what a trace says
// of a command: its job, a short description, its stamp (empty if none).
std::string with_trace(std::string encoded_command, std::string_view stamp);
struct CommandSummary {
  std::string job_id;
  std::string what;
  std::string trace;
};
std::optional<CommandSummary> summarize(std::string_view encoded_command);

// True for the commands any node may ask the leader to propose (submit and
// cancel); assignments and shard outcomes come from the leader's own
// scheduler and verifier only.
bool is_client_command(std::string_view encoded_command);

struct RowRange {
  std::uint32_t begin = 0;
  std::uint32_t end = 0;
  bool operator==(const RowRange&) const = default;
};
// Shard `index` of `rows` rows cut into `shards` blocks as evenly as possible:
// the first rows % shards blocks are one row longer. Requires
// 1 <= shards <= rows and index < shards.
RowRange shard_rows(std::uint32_t rows, std::uint32_t shards, std::uint32_t index);

class JobTable {
 public:
  // Decodes, validates and applies one command. On error the table is
  // unchanged; the error says why in one line.
  Result<void> apply(std::string_view encoded_command);

  [[nodiscard]] const Job* find(std::string_view job_id) const;
  // The one job whose id starts with `prefix` (at least kMinPrefixHexDigits
  // hex digits, either case); not_found or invalid_argument (too short, not
  // hex, ambiguous) otherwise.
  [[nodiscard]] Result<const Job*> find_by_prefix(std::string_view prefix) const;
  // Every job, in submission order.
  [[nodiscard]] std::vector<const Job*> jobs() const;
  [[nodiscard]] std::size_t size() const { return m_jobs.size(); }
  [[nodiscard]] std::size_t shard_count() const { return m_shard_count; }

  // The whole table, for a Raft snapshot; restore() gives back an equal one.
  [[nodiscard]] std::string snapshot() const;
  // Checks everything apply() would have: a damaged snapshot is an error.
  static Result<JobTable> restore(std::string_view bytes);

 private:
  Result<void> submit(JobSpec spec);
  // The job a command names, which must exist and not be finished.
  Result<Job*> live_job(std::string_view job_id);
  void insert(Job job);
  void erase(std::uint64_t seq);

  // Submission sequence -> job; m_by_id maps ids back. Sequence numbers
  // are local (restore renumbers) and only their order matters.
  std::map<std::uint64_t, Job> m_jobs;
  std::map<std::string, std::uint64_t, std::less<>> m_by_id;
  std::uint64_t m_next_seq = 0;
  std::size_t m_shard_count = 0;
};

}  // namespace p2pd::sched
