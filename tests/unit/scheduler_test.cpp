// The leader's scheduler against a real job table: it proposes commands and
// the test applies them, as Raft would once they commit.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <map>

#include "daemon/sched/scheduler.hpp"

using namespace p2pd;
using namespace p2pd::sched;

namespace {

NodeId worker(int n) {
  return NodeId::hash_of(fmt::format("worker {}", n));
}

WorkerReport report(int n, double gflops = 100, std::uint32_t slots = 1, std::uint64_t memory = 1ull << 30) {
  return WorkerReport{worker(n), exec::ExecutorKind::cpu, memory, gflops, slots};
}

std::string job_id(int n) {
  return fmt::format("{:032x}", n + 1);
}

void submit(JobTable& table, int n, std::uint32_t shards, std::uint32_t max_attempts = 3) {
  JobSpec spec;
  spec.job_id = job_id(n);
  spec.submitted_at_ms = 1000 + static_cast<std::uint64_t>(n);
  spec.submitter = "tester";
  spec.a = MatrixInput{"a-ref", 600, 300};
  spec.b = MatrixInput{"b-ref", 300, 200};
  spec.shards = shards;
  spec.max_attempts = max_attempts;
  REQUIRE(table.apply(encode_submit(spec)));
}

// Applies what the scheduler proposes; the count of commands applied.
std::size_t apply_plan(Scheduler& s, JobTable& table, std::uint64_t now_ms = 5000) {
  std::size_t applied = 0;
  for (const auto& command : s.plan(table, now_ms)) {
    if (table.apply(command)) ++applied;
  }
  return applied;
}

std::map<std::string, int> shards_per_peer(const JobTable& table, int job) {
  std::map<std::string, int> out;
  for (const auto& shard : table.find(job_id(job))->shards) {
    if (shard.state == ShardState::assigned) ++out[shard.peer];
  }
  return out;
}

}  // namespace

TEST_CASE("scheduler spreads shards over free workers, fastest first", "[unit][sched]") {
  JobTable table;
  submit(table, 0, 4);
  Scheduler s;
  s.on_heartbeat(report(1, 50, 1));
  s.on_heartbeat(report(2, 200, 2));
  s.on_heartbeat(report(3, 100, 1));
  CHECK(apply_plan(s, table) == 4);
  const auto spread = shards_per_peer(table, 0);
  CHECK(spread.at(worker(2).hex()) == 2);  // fastest, two slots
  CHECK(spread.at(worker(3).hex()) == 1);
  CHECK(spread.at(worker(1).hex()) == 1);
  CHECK(table.find(job_id(0))->state == JobState::running);
  // Nothing more to do, and nothing proposed twice.
  CHECK(s.plan(table, 5000).empty());
}

TEST_CASE("scheduler leaves shards waiting when nobody is free or big enough", "[unit][sched]") {
  JobTable table;
  submit(table, 0, 3);
  Scheduler s;
  s.on_heartbeat(report(1, 100, 1, /*memory=*/1000));  // far too small for a shard
  CHECK(apply_plan(s, table) == 0);
  s.on_heartbeat(report(2, 100, 1));
  CHECK(apply_plan(s, table) == 1);  // one slot: one shard at a time
  for (int t = 0; t < 50; ++t) s.tick();
  s.on_heartbeat(report(2, 100, 1));
  CHECK(apply_plan(s, table) == 0);  // still busy
  const auto& shards = table.find(job_id(0))->shards;
  REQUIRE(table.apply(
      encode_shard_done(job_id(0), shards[0].state == ShardState::assigned ? 0 : 1, worker(2).hex(), "c-ref")));
  CHECK(apply_plan(s, table) == 1);  // the slot is free again
}

TEST_CASE("scheduler re-runs the shards of a worker that stops heartbeating", "[unit][sched]") {
  JobTable table;
  submit(table, 0, 2);
  SchedulerConfig config;
  config.heartbeat_timeout_ticks = 10;
  Scheduler s(config);
  s.on_heartbeat(report(1));
  s.on_heartbeat(report(2));
  REQUIRE(apply_plan(s, table) == 2);
  // Worker 1 goes silent; worker 2 and a newcomer keep heartbeating.
  for (int t = 0; t < 12; ++t) {
    s.tick();
    s.on_heartbeat(report(2));
    s.on_heartbeat(report(3));
  }
  CHECK(apply_plan(s, table) == 1);  // worker 1's shard failed back to pending
  CHECK(apply_plan(s, table) == 1);  // and given to worker 3 (worker 2 is busy)
  const auto spread = shards_per_peer(table, 0);
  CHECK_FALSE(spread.contains(worker(1).hex()));
  CHECK(spread.at(worker(3).hex()) == 1);
  for (const auto& shard : table.find(job_id(0))->shards) CHECK(shard.attempts >= 1);
}

TEST_CASE("scheduler takes work from a worker caught lying and gives it none for a while", "[unit][sched]") {
  JobTable table;
  submit(table, 0, 1);
  SchedulerConfig config;
  config.ban_ticks = 20;
  Scheduler s(config);
  s.on_heartbeat(report(1, 1000));  // the fastest: it gets the shard
  s.on_heartbeat(report(2, 10));
  REQUIRE(apply_plan(s, table) == 1);
  CHECK(shards_per_peer(table, 0).contains(worker(1).hex()));
  s.on_wrong_result(worker(1));
  CHECK(apply_plan(s, table) == 1);  // failed back
  CHECK(apply_plan(s, table) == 1);  // to worker 2, although slower
  CHECK(shards_per_peer(table, 0).contains(worker(2).hex()));
  // The ban ends.
  for (int t = 0; t < 25; ++t) {
    s.tick();
    s.on_heartbeat(report(1, 1000));
    s.on_heartbeat(report(2, 10));
  }
  const auto views = s.workers(table);
  REQUIRE(views.size() == 2);
  for (const auto& v : views) CHECK(v.banned_ticks_left == 0);
}

TEST_CASE("scheduler retries are bounded by the job's attempts", "[unit][sched]") {
  JobTable table;
  submit(table, 0, 1, /*max_attempts=*/2);
  SchedulerConfig config;
  config.heartbeat_timeout_ticks = 5;
  config.repropose_ticks = 1;
  Scheduler s(config);
  for (int round = 0; round < 4; ++round) {
    s.on_heartbeat(report(round));
    apply_plan(s, table);                  // assign to this round's worker
    for (int t = 0; t < 6; ++t) s.tick();  // it dies
    apply_plan(s, table);                  // its shard fails back (or the job fails)
  }
  const Job* job = table.find(job_id(0));
  CHECK(job->state == JobState::failed);
  CHECK_THAT(job->error, Catch::Contains("stopped heartbeating"));
}

TEST_CASE("scheduler retries a failed shard on another worker, and on the same one only when no other can take it",
          "[unit][sched]") {
  JobTable table;
  submit(table, 0, 1, /*max_attempts=*/3);
  Scheduler s;
  s.on_heartbeat(report(1, /*gflops=*/500));  // the fastest: it gets the first try
  s.on_heartbeat(report(2, /*gflops=*/100));
  apply_plan(s, table);
  const auto peer_of_shard = [&] { return table.find(job_id(0))->shards[0].peer; };
  REQUIRE(peer_of_shard() == worker(1).hex());

  // Worker 1 says the try failed (cut off from the ring, say).
  REQUIRE(table.apply(encode_shard_failed(job_id(0), 0, worker(1).hex(), "no node on the route answered")));
  s.on_shard_failed(job_id(0), 0, worker(1).hex());
  apply_plan(s, table);
  CHECK(peer_of_shard() == worker(2).hex());  // not the fastest again

  // Worker 2 fails it too: both have, so the faster one gets the last try.
  REQUIRE(table.apply(encode_shard_failed(job_id(0), 0, worker(2).hex(), "disk full")));
  s.on_shard_failed(job_id(0), 0, worker(2).hex());
  apply_plan(s, table);
  CHECK(peer_of_shard() == worker(1).hex());
}

TEST_CASE("scheduler serves jobs in submission order", "[unit][sched]") {
  JobTable table;
  submit(table, 0, 2);
  submit(table, 1, 2);
  Scheduler s;
  s.on_heartbeat(report(1, 100, 3));
  CHECK(apply_plan(s, table) == 3);
  CHECK(shards_per_peer(table, 0).at(worker(1).hex()) == 2);
  CHECK(shards_per_peer(table, 1).at(worker(1).hex()) == 1);
}

TEST_CASE("a new leader's scheduler gives the old leader's workers one timeout to show up", "[unit][sched]") {
  JobTable table;
  submit(table, 0, 2);
  SchedulerConfig config;
  config.heartbeat_timeout_ticks = 10;
  {
    Scheduler old_leader(config);
    old_leader.on_heartbeat(report(1));
    old_leader.on_heartbeat(report(2));
    REQUIRE(apply_plan(old_leader, table) == 2);
  }
  // The new leader hears only from worker 2; worker 1 died with the old leader.
  Scheduler s(config);
  for (int t = 0; t < 9; ++t) {
    s.tick();
    s.on_heartbeat(report(2));
    CHECK(apply_plan(s, table) == 0);  // within the grace: nothing taken back
  }
  for (int t = 0; t < 2; ++t) {
    s.tick();
    s.on_heartbeat(report(2));
  }
  CHECK(apply_plan(s, table) == 1);  // worker 1's shard failed back to pending
  const auto spread = shards_per_peer(table, 0);
  CHECK_FALSE(spread.contains(worker(1).hex()));
  CHECK(spread.at(worker(2).hex()) == 1);
}
