// The replicated job table: shard cutting, the job lifecycle, every command
// it refuses (leaving the table unchanged), its bounds, prefix lookup, and
// snapshots that come back equal or, when damaged, as errors.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "daemon/sched/job_table.hpp"
#include "proto/jobs.pb.h"

using namespace p2pd;
using namespace p2pd::sched;

namespace {

const std::string kPeerA(40, 'a');
const std::string kPeerB(40, 'b');

std::string job_id(std::uint64_t n) {
  return fmt::format("{:032x}", n);
}

JobSpec gemm(std::string id, std::uint32_t m, std::uint32_t k, std::uint32_t n, std::uint32_t shards,
             std::uint32_t max_attempts = 0) {
  JobSpec spec;
  spec.job_id = std::move(id);
  spec.submitted_at_ms = 1000;
  spec.submitter = std::string(40, 'c') + ":alice";
  spec.a = MatrixInput{"sha256-aaaa", m, k};
  spec.b = MatrixInput{"sha256-bbbb", k, n};
  spec.shards = shards;
  spec.max_attempts = max_attempts;
  return spec;
}

void apply_ok(JobTable& table, const std::string& command) {
  const auto applied = table.apply(command);
  INFO((applied ? "" : applied.error().message));
  REQUIRE(applied);
}

// The command is refused with an error mentioning `text`, and the table is
// exactly as it was.
void rejected(JobTable& table, const std::string& command, const std::string& text) {
  const std::string before = table.snapshot();
  const auto applied = table.apply(command);
  REQUIRE_FALSE(applied);
  INFO(applied.error().message);
  CHECK_THAT(applied.error().message, Catch::Contains(text, Catch::CaseSensitive::No));
  CHECK(table.snapshot() == before);
}

std::string restore_error(const std::string& bytes) {
  const auto table = JobTable::restore(bytes);
  REQUIRE_FALSE(table);
  CHECK(table.error().code == ErrorCode::corrupt);
  return table.error().message;
}

// A table with one job in each state.
JobTable mixed_table() {
  JobTable table;
  apply_ok(table, encode_submit(gemm(job_id(1), 8, 4, 4, 2)));  // queued
  apply_ok(table, encode_submit(gemm(job_id(2), 8, 4, 4, 2)));  // running
  apply_ok(table, encode_assign(job_id(2), 1, kPeerA, 2000));
  apply_ok(table, encode_shard_failed(job_id(2), 1, kPeerA, "out of memory"));
  apply_ok(table, encode_assign(job_id(2), 1, kPeerB, 2100));
  apply_ok(table, encode_submit(gemm(job_id(3), 3, 4, 4, 3)));  // done
  for (std::uint32_t i = 0; i < 3; ++i) {
    apply_ok(table, encode_assign(job_id(3), i, kPeerA, 3000 + i));
    apply_ok(table, encode_shard_done(job_id(3), i, kPeerA, fmt::format("sha256-out{}", i)));
  }
  apply_ok(table, encode_submit(gemm(job_id(4), 8, 4, 4, 1, 1)));  // failed
  apply_ok(table, encode_assign(job_id(4), 0, kPeerB, 4000));
  apply_ok(table, encode_shard_failed(job_id(4), 0, kPeerB, "device lost"));
  apply_ok(table, encode_submit(gemm(job_id(5), 8, 4, 4, 4)));  // cancelled
  apply_ok(table, encode_assign(job_id(5), 2, kPeerA, 5000));
  apply_ok(table, encode_cancel(job_id(5)));
  return table;
}

JobTableSnapshot parsed(const std::string& bytes) {
  JobTableSnapshot snapshot;
  REQUIRE(snapshot.ParseFromString(bytes));
  return snapshot;
}

}  // namespace

TEST_CASE("jobs: shards are row blocks cut as evenly as possible", "[unit][jobs]") {
  SECTION("even") {
    for (std::uint32_t i = 0; i < 4; ++i) CHECK(shard_rows(12, 4, i) == RowRange{i * 3, i * 3 + 3});
  }
  SECTION("uneven: the first rows % shards blocks are one row longer") {
    CHECK(shard_rows(11, 4, 0) == RowRange{0, 3});
    CHECK(shard_rows(11, 4, 1) == RowRange{3, 6});
    CHECK(shard_rows(11, 4, 2) == RowRange{6, 9});
    CHECK(shard_rows(11, 4, 3) == RowRange{9, 11});
  }
  SECTION("as many shards as rows") {
    for (std::uint32_t i = 0; i < 7; ++i) CHECK(shard_rows(7, 7, i) == RowRange{i, i + 1});
  }
  SECTION("a submitted job covers every row of a exactly once") {
    JobTable table;
    apply_ok(table, encode_submit(gemm(job_id(1), 65536, 2, 2, 4096)));
    const Job* job = table.find(job_id(1));
    REQUIRE(job != nullptr);
    REQUIRE(job->shards.size() == 4096);
    std::uint32_t next = 0;
    for (std::uint32_t i = 0; i < job->shards.size(); ++i) {
      CHECK(job->shards[i].index == i);
      CHECK(job->shards[i].row_begin == next);
      CHECK(job->shards[i].row_end - job->shards[i].row_begin == 16);
      next = job->shards[i].row_end;
    }
    CHECK(next == 65536);
    CHECK(table.shard_count() == 4096);
  }
}

TEST_CASE("jobs: a job goes from queued through running to done", "[unit][jobs]") {
  JobTable table;
  JobSpec spec = gemm(job_id(7), 5, 3, 2, 2);
  apply_ok(table, encode_submit(spec));
  const Job* job = table.find(job_id(7));
  REQUIRE(job != nullptr);
  CHECK(job->state == JobState::queued);
  CHECK(to_string(job->state) == "queued");
  CHECK(job->kind == "gemm");
  CHECK(job->submitted_at_ms == 1000);
  CHECK(job->submitter == spec.submitter);
  CHECK(job->a == spec.a);
  CHECK(job->b == spec.b);
  CHECK(job->max_attempts == kDefaultMaxAttempts);
  CHECK(job->error.empty());
  REQUIRE(job->shards.size() == 2);
  CHECK(job->shards[0].row_end == 3);
  CHECK(job->shards[1].row_begin == 3);
  for (const Shard& shard : job->shards) {
    CHECK(shard.state == ShardState::pending);
    CHECK(shard.peer.empty());
    CHECK(shard.attempts == 0);
  }

  apply_ok(table, encode_assign(job_id(7), 1, kPeerA, 2000));
  CHECK(job->state == JobState::running);
  CHECK(to_string(job->state) == "running");
  CHECK(job->shards[1].state == ShardState::assigned);
  CHECK(to_string(job->shards[1].state) == "assigned");
  CHECK(job->shards[1].peer == kPeerA);
  CHECK(job->shards[1].attempts == 1);
  CHECK(job->shards[1].assigned_at_ms == 2000);
  CHECK(job->shards[0].state == ShardState::pending);

  apply_ok(table, encode_assign(job_id(7), 0, kPeerB, 2001));
  apply_ok(table, encode_shard_done(job_id(7), 1, kPeerA, "sha256-out1"));
  CHECK(job->state == JobState::running);
  CHECK(job->shards[1].state == ShardState::done);
  CHECK(to_string(job->shards[1].state) == "done");
  CHECK(job->shards[1].output_ref == "sha256-out1");

  apply_ok(table, encode_shard_done(job_id(7), 0, kPeerB, "sha256-out0"));
  CHECK(job->state == JobState::done);
  CHECK(to_string(job->state) == "done");
  CHECK(job->shards[0].output_ref == "sha256-out0");

  // Final: nothing more is accepted for it.
  rejected(table, encode_cancel(job_id(7)), "done");
  rejected(table, encode_assign(job_id(7), 0, kPeerA, 3000), "finished");
  rejected(table, encode_shard_done(job_id(7), 0, kPeerB, "sha256-x"), "finished");
  rejected(table, encode_shard_failed(job_id(7), 0, kPeerB, "late"), "finished");
  rejected(table, encode_submit(spec), "already exists");
}

TEST_CASE("jobs: submit refuses malformed jobs", "[unit][jobs]") {
  JobTable table;
  apply_ok(table, encode_submit(gemm(job_id(1), 4, 4, 4, 2)));
  const auto refused = [&](JobSpec spec, const std::string& text) { rejected(table, encode_submit(spec), text); };

  refused(gemm(job_id(1), 4, 4, 4, 2), "already exists");
  refused(gemm("0123456789ABCDEF0123456789ABCDEF", 4, 4, 4, 1), "lowercase hex");
  refused(gemm("0123456789abcdef", 4, 4, 4, 1), "32 lowercase hex");
  refused(gemm(std::string(32, 'g'), 4, 4, 4, 1), "hex");
  JobSpec spec = gemm(job_id(2), 4, 4, 4, 1);
  spec.kind = "conv";
  refused(spec, "kind 'conv' is not supported");
  spec = gemm(job_id(2), 4, 4, 4, 1);
  spec.submitter = "";
  refused(spec, "submitter");
  spec.submitter = "alice\nforged log line";
  refused(spec, "submitter 'alice\\x0aforged");
  spec.submitter = std::string(kMaxSubmitterBytes + 1, 's');
  refused(spec, "submitter");
  spec = gemm(job_id(2), 4, 4, 4, 1);
  spec.a.ref = "";
  refused(spec, "input a ref must be 1 to 128");
  spec.a.ref = std::string(kMaxRefBytes + 1, 'r');
  refused(spec, "input a ref must be 1 to 128");
  spec = gemm(job_id(2), 4, 4, 4, 1);
  spec.b.ref = "has space";
  refused(spec, "input b ref 'has space' may hold only printable");
  refused(gemm(job_id(2), 0, 4, 4, 1), "input a is 0x4");
  refused(gemm(job_id(2), 4, 4, 0, 1), "input b is 4x0");
  refused(gemm(job_id(2), kMaxDim + 1, 4, 4, 1), "dimensions must be 1 to 65536");
  refused(gemm(job_id(2), 4, kMaxDim + 1, 4, 1), "dimensions must be 1 to 65536");
  spec = gemm(job_id(2), 4, 4, 4, 1);
  spec.b.rows = 5;
  refused(spec, "shapes do not chain");
  refused(gemm(job_id(2), 4, 4, 4, 0), "0 shards");
  refused(gemm(job_id(2), 4, 4, 4, 5), "5 shards asked for: a job of 4 rows takes 1 to 4");
  refused(gemm(job_id(2), 5000, 4, 4, kMaxShards + 1), "takes 1 to 4096");
  refused(gemm(job_id(2), 4, 4, 4, 1, kMaxAttemptsLimit + 1), "max attempts");

  CHECK(table.size() == 1);
  // The boundaries themselves are fine.
  apply_ok(table, encode_submit(gemm(job_id(3), kMaxDim, kMaxDim, 1, kMaxShards, kMaxAttemptsLimit)));
  apply_ok(table, encode_submit(gemm(job_id(4), 1, 1, 1, 1)));
}

TEST_CASE("jobs: assign and shard reports refuse what does not fit the shard", "[unit][jobs]") {
  JobTable table;
  apply_ok(table, encode_submit(gemm(job_id(1), 4, 4, 4, 2)));

  rejected(table, encode_assign(job_id(9), 0, kPeerA, 1), "no job");
  rejected(table, encode_assign("123", 0, kPeerA, 1), "not 32 lowercase hex");
  rejected(table, encode_assign(job_id(1), 2, kPeerA, 1), "has no shard 2: it has 2");
  rejected(table, encode_assign(job_id(1), 0, std::string(40, 'A'), 1), "40 lowercase hex");
  rejected(table, encode_assign(job_id(1), 0, kPeerA.substr(1), 1), "not a node id");
  rejected(table, encode_shard_done(job_id(1), 0, kPeerA, "sha256-out"), "is pending, not assigned");
  rejected(table, encode_shard_failed(job_id(1), 0, kPeerA, "why"), "is pending, not assigned");
  CHECK(table.find(job_id(1))->state == JobState::queued);

  apply_ok(table, encode_assign(job_id(1), 0, kPeerA, 1));
  rejected(table, encode_assign(job_id(1), 0, kPeerB, 2), "is assigned, not pending");
  rejected(table, encode_shard_done(job_id(1), 0, kPeerB, "sha256-out"),
           "assigned to " + kPeerA + ", not to " + kPeerB);
  rejected(table, encode_shard_failed(job_id(1), 0, kPeerB, "why"), "assigned to " + kPeerA);
  rejected(table, encode_shard_done(job_id(1), 0, kPeerA, ""), "output ref must be 1 to 128");
  rejected(table, encode_shard_done(job_id(1), 0, kPeerA, "bad\tref"), "printable");
  rejected(table, encode_shard_done(job_id(1), 5, kPeerA, "sha256-out"), "no shard 5");
  rejected(table, encode_shard_done(job_id(1), 0, "zz", "sha256-out"), "not a node id");

  apply_ok(table, encode_shard_done(job_id(1), 0, kPeerA, "sha256-out"));
  rejected(table, encode_shard_done(job_id(1), 0, kPeerA, "sha256-out"), "is done, not assigned");
  rejected(table, encode_assign(job_id(1), 0, kPeerA, 3), "is done, not pending");
}

TEST_CASE("jobs: a failed shard is retried until its attempts run out", "[unit][jobs]") {
  JobTable table;
  apply_ok(table, encode_submit(gemm(job_id(1), 4, 4, 4, 2, 2)));
  const Job* job = table.find(job_id(1));
  REQUIRE(job != nullptr);
  CHECK(job->max_attempts == 2);

  apply_ok(table, encode_assign(job_id(1), 1, kPeerA, 10));
  apply_ok(table, encode_shard_failed(job_id(1), 1, kPeerA, "out of memory"));
  CHECK(job->state == JobState::running);
  CHECK(job->shards[1].state == ShardState::pending);
  CHECK(job->shards[1].peer.empty());
  CHECK(job->shards[1].attempts == 1);
  CHECK(job->shards[1].last_error == "out of memory");

  apply_ok(table, encode_assign(job_id(1), 1, kPeerB, 20));
  CHECK(job->shards[1].attempts == 2);
  CHECK(job->shards[1].last_error == "out of memory");  // kept until the next failure
  apply_ok(table, encode_shard_failed(job_id(1), 1, kPeerB, "kernel timed out"));
  CHECK(job->state == JobState::failed);
  CHECK(to_string(job->state) == "failed");
  CHECK_THAT(job->error, Catch::Contains("shard 1") && Catch::Contains("2 of 2 attempts") && Catch::Contains(kPeerB) &&
                             Catch::Contains("kernel timed out"));
  CHECK(job->shards[1].last_error == "kernel timed out");

  rejected(table, encode_assign(job_id(1), 1, kPeerA, 30), "is failed");
  rejected(table, encode_assign(job_id(1), 0, kPeerA, 30), "finished");
  rejected(table, encode_cancel(job_id(1)), "failed");
}

TEST_CASE("jobs: the default is three attempts", "[unit][jobs]") {
  JobTable table;
  apply_ok(table, encode_submit(gemm(job_id(1), 4, 4, 4, 1, 0)));
  for (std::uint64_t attempt = 1; attempt <= 3; ++attempt) {
    CHECK(table.find(job_id(1))->state != JobState::failed);
    apply_ok(table, encode_assign(job_id(1), 0, kPeerA, attempt));
    apply_ok(table, encode_shard_failed(job_id(1), 0, kPeerA, fmt::format("try {}", attempt)));
  }
  CHECK(table.find(job_id(1))->state == JobState::failed);
  CHECK_THAT(table.find(job_id(1))->error, Catch::EndsWith("try 3"));
}

TEST_CASE("jobs: failure reasons are kept to one bounded line", "[unit][jobs]") {
  JobTable table;
  apply_ok(table, encode_submit(gemm(job_id(1), 4, 4, 4, 1, 1)));
  apply_ok(table, encode_assign(job_id(1), 0, kPeerA, 1));
  // 19 bytes once escaped: the cut falls in the middle of an é.
  std::string reason = "line one\nline 2 ";
  for (int i = 0; i < 400; ++i) reason += "\xc3\xa9";  // é: two bytes, never split
  apply_ok(table, encode_shard_failed(job_id(1), 0, kPeerA, reason));
  const Job* job = table.find(job_id(1));
  const std::string& kept = job->shards[0].last_error;
  CHECK(kept.size() == kMaxErrorBytes - 1);
  CHECK_THAT(kept, Catch::StartsWith("line one\\x0aline 2 \xc3\xa9"));
  CHECK_THAT(kept, Catch::EndsWith("\xc3\xa9"));
  CHECK(job->error.size() <= kMaxErrorBytes);
  CHECK(job->error.find('\n') == std::string::npos);
  // Still valid UTF-8, or the snapshot would not parse back.
  const auto restored = JobTable::restore(table.snapshot());
  REQUIRE(restored);
  CHECK(*restored->find(job_id(1)) == *job);

  JobTable other;
  apply_ok(other, encode_submit(gemm(job_id(2), 4, 4, 4, 1)));
  apply_ok(other, encode_assign(job_id(2), 0, kPeerA, 1));
  apply_ok(other, encode_shard_failed(job_id(2), 0, kPeerA, ""));
  CHECK(other.find(job_id(2))->shards[0].last_error == "no reason given");
}

TEST_CASE("jobs: cancel ends a queued or running job", "[unit][jobs]") {
  JobTable table;
  apply_ok(table, encode_submit(gemm(job_id(1), 4, 4, 4, 2)));
  apply_ok(table, encode_submit(gemm(job_id(2), 4, 4, 4, 2)));
  apply_ok(table, encode_assign(job_id(2), 0, kPeerA, 1));
  apply_ok(table, encode_shard_done(job_id(2), 0, kPeerA, "sha256-out"));

  apply_ok(table, encode_cancel(job_id(1)));
  apply_ok(table, encode_cancel(job_id(2)));
  CHECK(table.find(job_id(1))->state == JobState::cancelled);
  CHECK(to_string(table.find(job_id(1))->state) == "cancelled");
  CHECK(table.find(job_id(2))->state == JobState::cancelled);
  CHECK(table.find(job_id(2))->shards[0].output_ref == "sha256-out");

  rejected(table, encode_cancel(job_id(1)), "is cancelled");
  rejected(table, encode_assign(job_id(2), 1, kPeerA, 2), "cancelled");
  rejected(table, encode_cancel(job_id(3)), "no job " + job_id(3));
  rejected(table, encode_cancel("nothex"), "not 32 lowercase hex");
}

TEST_CASE("jobs: a unique prefix of six hex digits finds a job", "[unit][jobs]") {
  JobTable table;
  const std::string first = "abcdef01" + std::string(24, '0');
  const std::string second = "abcdef02" + std::string(24, '0');
  const std::string third = "123456" + std::string(26, 'f');
  for (const auto& id : {first, second, third}) apply_ok(table, encode_submit(gemm(id, 4, 4, 4, 1)));

  const auto found = [&](const std::string& prefix) -> std::string {
    const auto job = table.find_by_prefix(prefix);
    INFO((job ? "" : job.error().message));
    REQUIRE(job);
    return (*job)->job_id;
  };
  const auto refused = [&](const std::string& prefix, ErrorCode code, const std::string& text) {
    const auto job = table.find_by_prefix(prefix);
    REQUIRE_FALSE(job);
    CHECK(job.error().code == code);
    CHECK_THAT(job.error().message, Catch::Contains(text));
  };

  CHECK(found("abcdef01") == first);
  CHECK(found("abcdef02") == second);
  CHECK(found("123456") == third);
  CHECK(found("ABCDEF01") == first);
  CHECK(found(second) == second);
  refused("abcdef", ErrorCode::invalid_argument, "ambiguous: 2 jobs match");
  refused("abcde", ErrorCode::invalid_argument, "too short");
  refused("", ErrorCode::invalid_argument, "too short");
  refused("abcdefxy", ErrorCode::invalid_argument, "not hex");
  refused("abcdef03", ErrorCode::not_found, "no job matches");
  refused(first + "0", ErrorCode::not_found, "no job matches");
  CHECK(table.find(first) != nullptr);
  CHECK(table.find("abcdef01") == nullptr);
}

TEST_CASE("jobs: jobs are listed in submission order", "[unit][jobs]") {
  JobTable table;
  const std::vector<std::uint64_t> order = {5, 1, 9, 3};
  for (const auto n : order) apply_ok(table, encode_submit(gemm(job_id(n), 4, 4, 4, 1)));
  const auto jobs = table.jobs();
  REQUIRE(jobs.size() == order.size());
  for (std::size_t i = 0; i < order.size(); ++i) CHECK(jobs[i]->job_id == job_id(order[i]));
}

TEST_CASE("jobs: a snapshot restores an equal table", "[unit][jobs]") {
  JobTable table = mixed_table();
  const std::string bytes = table.snapshot();
  auto restored = JobTable::restore(bytes);
  INFO((restored ? "" : restored.error().message));
  REQUIRE(restored);
  CHECK(restored->snapshot() == bytes);
  CHECK(restored->size() == table.size());
  CHECK(restored->shard_count() == table.shard_count());
  const auto original_jobs = table.jobs();
  const auto restored_jobs = restored->jobs();
  REQUIRE(restored_jobs.size() == original_jobs.size());
  for (std::size_t i = 0; i < original_jobs.size(); ++i) CHECK(*restored_jobs[i] == *original_jobs[i]);
  const std::vector<JobState> states = {JobState::queued, JobState::running, JobState::done, JobState::failed,
                                        JobState::cancelled};
  for (std::size_t i = 0; i < states.size(); ++i) CHECK(restored_jobs[i]->state == states[i]);

  // The restored table goes on exactly like the original.
  for (const auto& command : {encode_assign(job_id(1), 0, kPeerA, 9000), encode_shard_done(job_id(2), 1, kPeerB, "r"),
                              encode_submit(gemm(job_id(6), 4, 4, 4, 2)), encode_cancel(job_id(4))}) {
    CHECK(bool(table.apply(command)) == bool(restored->apply(command)));
  }
  CHECK(restored->snapshot() == table.snapshot());

  const auto empty = JobTable::restore(JobTable{}.snapshot());
  REQUIRE(empty);
  CHECK(empty->size() == 0);
}

TEST_CASE("jobs: garbage is an error for apply and restore", "[unit][jobs]") {
  JobTable table = mixed_table();
  const std::string before = table.snapshot();
  for (const std::string& bytes : {std::string(), std::string("\xff\xff\xff\xff", 4), std::string("garbage"),
                                   std::string("\x0a\x05xx", 4), std::string(1000, '\0'), before}) {
    const auto applied = table.apply(bytes);
    CHECK_FALSE(applied);
  }
  CHECK(table.snapshot() == before);
  CHECK_THAT(table.apply("").error().message, Catch::Contains("no known command"));
  CHECK(table.apply("\xff\xff").error().code == ErrorCode::corrupt);

  CHECK_THAT(restore_error(""), Catch::Contains("format 0"));
  CHECK_THAT(restore_error("\xff\xff\xff\xff"), Catch::Contains("does not decode"));
  CHECK_THAT(restore_error(encode_cancel(job_id(1))), Catch::Contains("does not decode") || Catch::Contains("format"));

  // Every truncation and every single-byte change either fails cleanly or
  // gives a table that passes every check (run under ASan/UBSan in CI).
  // protobuf logs each string field that is not UTF-8; quiet here.
  const google::protobuf::LogSilencer quiet;
  for (std::size_t cut = 0; cut < before.size(); ++cut) (void)JobTable::restore(before.substr(0, cut));
  for (std::size_t i = 0; i < before.size(); ++i) {
    for (const int flip : {0x01, 0x80, 0xff}) {
      std::string damaged = before;
      damaged[i] = static_cast<char>(damaged[i] ^ flip);
      const auto restored = JobTable::restore(damaged);
      if (restored) CHECK(JobTable::restore(restored->snapshot()));
    }
  }
}

TEST_CASE("jobs: restore refuses a snapshot apply could not have built", "[unit][jobs]") {
  const std::string good = mixed_table().snapshot();
  const auto damaged = [&](auto&& change) {
    JobTableSnapshot snapshot = parsed(good);
    change(snapshot);
    return restore_error(snapshot.SerializeAsString());
  };
  // jobs(0) queued, 1 running, 2 done, 3 failed, 4 cancelled (mixed_table).
  CHECK_THAT(damaged([](auto& s) { s.set_format(2); }), Catch::Contains("format 2"));
  CHECK_THAT(damaged([](auto& s) { *s.add_jobs() = s.jobs(0); }), Catch::Contains("repeats id"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(0)->set_job_id("XYZ"); }), Catch::Contains("hex"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(0)->set_kind("conv"); }), Catch::Contains("kind"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(0)->set_state(JobStatus(42)); }),
             Catch::Contains("unknown job state 42"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(0)->set_state(JOB_STATUS_UNSPECIFIED); }),
             Catch::Contains("unknown job state 0"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(0)->mutable_b()->set_rows(5); }), Catch::Contains("chain"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(0)->set_max_attempts(0); }), Catch::Contains("max attempts"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(0)->clear_shards(); }), Catch::Contains("0 shards"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(0)->mutable_shards(1)->set_row_begin(3); }), Catch::Contains("rows"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(0)->mutable_shards(1)->set_index(0); }), Catch::Contains("numbered"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(0)->mutable_shards(0)->set_state(ShardStatus(9)); }),
             Catch::Contains("unknown shard state 9"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(0)->mutable_shards(0)->set_peer(kPeerA); }),
             Catch::Contains("pending shard 0 has a peer"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(0)->mutable_shards(0)->set_attempts(1); }),
             Catch::Contains("a queued job cannot"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(1)->mutable_shards(1)->set_peer("nothex"); }),
             Catch::Contains("node id"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(1)->mutable_shards(1)->set_attempts(0); }),
             Catch::Contains("no attempts"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(1)->mutable_shards(1)->set_attempts(4); }),
             Catch::Contains("over the job's 3"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(1)->mutable_shards(0)->set_attempts(3); }),
             Catch::Contains("no attempts left"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(1)->set_error("boom"); }), Catch::Contains("cannot have an error"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(1)->mutable_shards(1)->set_last_error("a\nb"); }),
             Catch::Contains("last error"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(2)->mutable_shards(0)->set_state(SHARD_STATUS_PENDING); }),
             Catch::Contains("pending shard 0 has a peer or an output"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(2)->mutable_shards(0)->set_output_ref(""); }),
             Catch::Contains("output ref"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(2)->set_state(JOB_STATUS_RUNNING); }),
             Catch::Contains("a running job cannot have 3 of 3 shards done"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(3)->clear_error(); }), Catch::Contains("must have an error"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(3)->set_max_attempts(2); }), Catch::Contains("a failed job cannot"));
  CHECK_THAT(damaged([](auto& s) { s.mutable_jobs(4)->set_error("boom"); }), Catch::Contains("cannot have an error"));
  CHECK_THAT(damaged([](auto& s) {
               for (auto& shard : *s.mutable_jobs(4)->mutable_shards()) {
                 shard.set_state(SHARD_STATUS_DONE);
                 shard.set_peer(kPeerA);
                 shard.set_attempts(1);
                 shard.set_output_ref("r");
               }
             }),
             Catch::Contains("a cancelled job cannot"));
  CHECK_THAT(damaged([](auto& s) {
               JobRecord job = s.jobs(0);
               s.clear_jobs();
               for (std::size_t i = 0; i <= kMaxJobs; ++i) {
                 job.set_job_id(job_id(i));
                 *s.add_jobs() = job;
               }
             }),
             Catch::Contains("over the limit of 10000"));
}

TEST_CASE("jobs: a full table evicts its oldest finished job", "[unit][jobs]") {
  JobTable table;
  for (std::uint64_t n = 0; n < kMaxJobs; ++n) apply_ok(table, encode_submit(gemm(job_id(n), 1, 1, 1, 1)));
  CHECK(table.size() == kMaxJobs);

  // Nothing finished: nothing may go.
  rejected(table, encode_submit(gemm(job_id(kMaxJobs), 1, 1, 1, 1)), "job table full");

  apply_ok(table, encode_cancel(job_id(7)));
  apply_ok(table, encode_cancel(job_id(5)));
  apply_ok(table, encode_submit(gemm(job_id(kMaxJobs), 1, 1, 1, 1)));
  CHECK(table.size() == kMaxJobs);
  CHECK(table.find(job_id(5)) == nullptr);  // the oldest finished, by submission
  CHECK(table.find(job_id(7)) != nullptr);
  CHECK(table.find(job_id(0)) != nullptr);
  CHECK(table.jobs().back()->job_id == job_id(kMaxJobs));

  apply_ok(table, encode_submit(gemm(job_id(kMaxJobs + 1), 1, 1, 1, 1)));
  CHECK(table.find(job_id(7)) == nullptr);
  CHECK(table.size() == kMaxJobs);
  rejected(table, encode_submit(gemm(job_id(kMaxJobs + 2), 1, 1, 1, 1)), "job table full");

  // An evicted id is free again.
  apply_ok(table, encode_cancel(job_id(0)));
  apply_ok(table, encode_submit(gemm(job_id(5), 1, 1, 1, 1)));
  CHECK(table.find(job_id(0)) == nullptr);

  const auto restored = JobTable::restore(table.snapshot());
  REQUIRE(restored);
  CHECK(restored->size() == kMaxJobs);
}

TEST_CASE("jobs: the shards retained are bounded too", "[unit][jobs]") {
  JobTable table;
  const std::size_t fit = kMaxRetainedShards / kMaxShards;
  for (std::uint64_t n = 0; n < fit; ++n) {
    apply_ok(table, encode_submit(gemm(job_id(n), kMaxShards, 1, 1, kMaxShards)));
  }
  CHECK(table.shard_count() == kMaxRetainedShards);
  rejected(table, encode_submit(gemm(job_id(fit), 1, 1, 1, 1)), "job table full");
  apply_ok(table, encode_cancel(job_id(3)));
  apply_ok(table, encode_submit(gemm(job_id(fit), 1, 1, 1, 1)));
  CHECK(table.find(job_id(3)) == nullptr);
  CHECK(table.shard_count() == kMaxRetainedShards - kMaxShards + 1);
}
