// Jobs on real p2pd processes on loopback (issue 5's "Done when"): a
// sharded GEMM on four peers equals a reference computed here; the pool
// finishes a job after the worker running a shard is SIGKILLed, and after
// the leader is; a worker that lies is caught by verification and its shard
// re-run elsewhere; bad inputs are refused on both sides, p2pctl's and the
// daemon's. Figures are printed (ctest -V, or the binary).
#include <catch2/catch.hpp>

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "common/npy.hpp"
#include "daemon/trace/recorder.hpp"
#include "proto/control.grpc.pb.h"
#include "tests/support/daemon_pool.hpp"

using namespace p2pd;
using namespace p2pd::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

struct Matrix {
  std::uint64_t rows = 0;
  std::uint64_t cols = 0;
  std::vector<float> values;
};

Matrix random_matrix(std::uint64_t rows, std::uint64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Matrix m{rows, cols, std::vector<float>(rows * cols)};
  for (auto& v : m.values) v = dist(rng);
  return m;
}

void save(const Matrix& m, const std::filesystem::path& path) {
  REQUIRE(npy::write_matrix(path, m.rows, m.cols, m.values));
}

// |C[i][j] - sum_t A[i][t]·B[t][j]| against a bound on float32 rounding
// (Higham's γ_k times sum |A||B|, doubled), in double precision: numpy-free.
bool entry_matches(const Matrix& a, const Matrix& b, const std::vector<float>& c, std::uint64_t i, std::uint64_t j) {
  double exact = 0;
  double magnitude = 0;
  for (std::uint64_t t = 0; t < a.cols; ++t) {
    const double p = static_cast<double>(a.values[i * a.cols + t]) * b.values[t * b.cols + j];
    exact += p;
    magnitude += std::abs(p);
  }
  const double u = std::ldexp(1.0, -24);
  const double gamma = static_cast<double>(a.cols) * u / (1 - static_cast<double>(a.cols) * u);
  return std::abs(c[i * b.cols + j] - exact) <= 2 * gamma * magnitude + 1e-30;
}

// Every entry (small results) or `samples` random ones; the mismatches.
std::size_t mismatches(const Matrix& a, const Matrix& b, const std::filesystem::path& c_path, std::size_t samples = 0) {
  npy::NpyHeader header;
  auto c = npy::read_matrix(c_path, &header);
  REQUIRE(c);
  REQUIRE(header.rows == a.rows);
  REQUIRE(header.cols == b.cols);
  std::size_t bad = 0;
  if (samples == 0) {
    for (std::uint64_t i = 0; i < a.rows; ++i) {
      for (std::uint64_t j = 0; j < b.cols; ++j) bad += entry_matches(a, b, *c, i, j) ? 0 : 1;
    }
  } else {
    std::mt19937 rng(7);
    for (std::size_t s = 0; s < samples; ++s) {
      bad += entry_matches(a, b, *c, rng() % a.rows, rng() % b.cols) ? 0 : 1;
    }
    // The corners too: the first and last row of every shard boundary are where an off-by-one shows.
    for (std::uint64_t i : {std::uint64_t{0}, a.rows - 1}) {
      for (std::uint64_t j : {std::uint64_t{0}, b.cols - 1}) bad += entry_matches(a, b, *c, i, j) ? 0 : 1;
    }
  }
  return bad;
}

// `p2pctl --json submit gemm ARGS` on `daemon`; the reply, or null when it failed.
json submit(const TestDaemon& daemon, const std::vector<std::string>& args);

struct JobPool : DaemonPool {
  // Starts n daemons joined through the first; `env_of(i)` for each one's environment.
  bool start(std::size_t n, const std::function<std::vector<std::string>(std::size_t)>& env_of = {}) {
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<std::string> args{"--executor", "cpu"};
      if (i > 0) args.insert(args.end(), {"--bootstrap", listen[0]});
      if (!add(args, env_of ? env_of(i) : std::vector<std::string>{})) return false;
    }
    return true;
  }

  // Every live node names the same leader; its index.
  std::optional<std::size_t> agreed_leader() {
    std::optional<std::string> leader;
    for (auto i : live()) {
      json view = daemons[i]->ctl_json({"leader"});
      if (!view.is_object() || view["leader_id"].is_null()) return std::nullopt;
      const auto id = view["leader_id"].get<std::string>();
      if (leader && *leader != id) return std::nullopt;
      leader = id;
    }
    if (!leader) return std::nullopt;
    for (auto i : live()) {
      if (ids[i] == *leader) return i;
    }
    return std::nullopt;
  }

  std::optional<std::size_t> wait_for_leader(std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (auto leader = agreed_leader()) return leader;
      std::this_thread::sleep_for(200ms);
    }
    return std::nullopt;
  }

  // Waits until the leader's scheduler has heard from every live node: then
  // each can be given work.
  bool wait_until_formed(std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (auto leader = agreed_leader()) {
        json view = daemons[*leader]->ctl_json({"leader"});
        if (view.is_object() && view["workers"].size() >= live().size()) return true;
      }
      std::this_thread::sleep_for(200ms);
    }
    return false;
  }

  // Saves A and B in the pool's directory and submits C = A x B on daemon
  // `submitter` in `shards` shards, waiting for it and writing dir/c.npy.
  json submit_and_wait(std::size_t submitter, const Matrix& a, const Matrix& b, int shards) {
    const auto where = dir.path();
    save(a, where / "a.npy");
    save(b, where / "b.npy");
    return submit(*daemons[submitter], {"--a", (where / "a.npy").string(), "--b", (where / "b.npy").string(),
                                        "--shards", std::to_string(shards), "--out", (where / "c.npy").string()});
  }

  std::size_t index_of(const std::string& id) const {
    return static_cast<std::size_t>(std::find(ids.begin(), ids.end(), id) - ids.begin());
  }
};

json submit(const TestDaemon& daemon, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"--json", "submit", "gemm"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto result = daemon.ctl(argv, 120s);
  INFO(result.err);
  REQUIRE(result.status.signal == 0);
  if (result.status.code != 0) return json();
  return json::parse(result.out);
}

// Polls `job` on `daemon` until `pick` returns an index (or the time is up).
std::optional<std::size_t> wait_for_shard(const TestDaemon& daemon, const std::string& job_id,
                                          const std::function<std::optional<std::size_t>(const json&)>& pick,
                                          std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    json job = daemon.ctl_json({"job", job_id});
    if (job.is_object()) {
      if (auto found = pick(job)) return found;
    }
    std::this_thread::sleep_for(50ms);
  }
  return std::nullopt;
}

json wait_job(const TestDaemon& daemon, const std::string& job_id, std::chrono::seconds limit) {
  auto result = daemon.ctl({"--json", "wait", job_id}, limit);
  INFO(result.err);
  if (result.status.signal != 0 || result.out.empty()) return json();
  return json::parse(result.out, nullptr, false);
}

// A four-node pool whose shards wait 1.5 s before they run (so a test can
// catch one running), with A and B saved and a job of 8 shards submitted on
// a node that is not the leader.
struct RunningJob {
  JobPool pool;
  std::size_t leader = 0;
  std::size_t submitter = 0;
  Matrix a;
  Matrix b;
  std::string id;

  RunningJob(std::uint64_t m, std::uint64_t k, std::uint64_t n, unsigned seed) {
    REQUIRE(pool.start(4, [](std::size_t) { return std::vector<std::string>{"P2PD_TEST_SHARD_DELAY_MS=1500"}; }));
    REQUIRE(pool.wait_until_formed(30s));
    const auto found = pool.wait_for_leader(30s);
    REQUIRE(found);
    leader = *found;
    submitter = leader == 0 ? 1 : 0;
    a = random_matrix(m, k, seed);
    b = random_matrix(k, n, seed + 1);
    save(a, dir() / "a.npy");
    save(b, dir() / "b.npy");
    json submitted = submit(*pool.daemons[submitter],
                            {"--a", (dir() / "a.npy").string(), "--b", (dir() / "b.npy").string(), "--shards", "8"});
    REQUIRE(submitted.is_object());
    id = submitted["job_id"].get<std::string>();
  }
  [[nodiscard]] std::filesystem::path dir() const { return pool.dir.path(); }
};

}  // namespace

TEST_CASE("a 600x300 by 300x200 job in 4 shards runs on several peers and equals the reference",
          "[integration][jobs]") {
  JobPool pool;
  REQUIRE(pool.start(4));
  REQUIRE(pool.wait_until_formed(30s));
  const Matrix a = random_matrix(600, 300, 1);
  const Matrix b = random_matrix(300, 200, 2);
  const auto dir = pool.dir.path();

  const auto start = Clock::now();
  // Submitted on a node that need not be the leader: the job goes through it.
  json job = pool.submit_and_wait(1, a, b, 4);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  REQUIRE(job.is_object());
  CHECK(job["state"] == "done");
  CHECK(job["path"] == (dir / "c.npy").string());
  REQUIRE(job["shards"].size() == 4);
  std::set<std::string> peers;
  for (const auto& shard : job["shards"]) {
    CHECK(shard["state"] == "done");
    peers.insert(shard["peer"].get<std::string>());
  }
  CHECK(peers.size() >= 2);
  CHECK(mismatches(a, b, dir / "c.npy") == 0);
  fmt::print("4 peers, 600x300 by 300x200, 4 shards: done in {:.2f} s on {} distinct peers\n", seconds, peers.size());

  // Every node's replica of the table agrees, and ids are accepted by prefix.
  const std::string id = job["job_id"].get<std::string>();
  for (auto i : pool.live()) {
    json seen = pool.daemons[i]->ctl_json({"job", id.substr(0, 8)});
    REQUIRE(seen.is_object());
    CHECK(seen["job_id"] == id);
    CHECK(seen["state"] == "done");
  }
  json listed = pool.daemons[3]->ctl_json({"jobs"});
  REQUIRE(listed["jobs"].size() == 1);
  CHECK(listed["jobs"][0]["job_id"] == id);
  CHECK(listed["jobs"][0]["shards_done"] == 4);

  // `result` from another node streams the same output.
  auto again = pool.daemons[2]->ctl({"--json", "result", id, "--out", (dir / "c2.npy").string()});
  INFO(again.err);
  REQUIRE(again.status.code == 0);
  CHECK(json::parse(again.out)["bytes"] == std::filesystem::file_size(dir / "c2.npy"));
  CHECK(read_file(dir / "c.npy") == read_file(dir / "c2.npy"));

  // The trace (issue 6): every peer message carried its sender's clocks, so
  // a shard computed on a worker comes before its verification on the
  // leader in Lamport and hybrid time alike; the report between them is
  // the only path.
  const auto leader = pool.agreed_leader();
  REQUIRE(leader);
  std::map<std::string, std::size_t> node_of;  // node id -> daemon
  for (auto i : pool.live()) node_of[pool.daemons[i]->ctl_json({"status"})["node_id"].get<std::string>()] = i;
  for (auto i : pool.live()) CHECK(pool.daemons[i]->stop().exited_with(0));
  std::vector<std::vector<trace::TraceEvent>> traces;
  for (const auto& daemon : pool.daemons) {
    auto recorder = trace::Recorder::open(daemon->state_dir() / "traces", 64 << 20);
    REQUIRE(recorder);
    auto events = (*recorder)->events("", 0, 100000);
    REQUIRE(events);
    REQUIRE_FALSE(events->empty());
    CHECK(events->front().what.find("started") != std::string::npos);
    traces.push_back(std::move(*events));
  }
  auto find = [&](std::size_t node, const std::string& what) -> const trace::TraceEvent* {
    for (const auto& e : traces[node]) {
      if (e.job_id == id && e.what == what) return &e;
    }
    return nullptr;
  };
  CHECK(find(1, "job submitted") != nullptr);
  for (const auto& shard : job["shards"]) {
    const auto index = shard["index"].get<int>();
    const auto* computed = find(node_of.at(shard["peer"].get<std::string>()), fmt::format("shard {} computed", index));
    const auto* verified = find(*leader, fmt::format("shard {} verified", index));
    REQUIRE(computed != nullptr);
    REQUIRE(verified != nullptr);
    CHECK(computed->lamport < verified->lamport);
    CHECK(computed->hlc < verified->hlc);
  }
}

TEST_CASE("a 2048x1024 by 1024x1024 job in 8 shards survives the SIGKILL of a worker running a shard",
          "[integration][jobs]") {
  RunningJob run(2048, 1024, 1024, 3);
  auto& pool = run.pool;
  const Matrix& a = run.a;
  const Matrix& b = run.b;
  const std::string& id = run.id;
  const auto dir = run.dir();
  const auto leader = std::optional<std::size_t>(run.leader);
  const std::size_t submitter = run.submitter;
  const auto start = Clock::now();

  // A worker that is neither the leader nor the submitter, caught running a shard.
  std::string victim_id;
  auto shard = wait_for_shard(
      *pool.daemons[submitter], id,
      [&](const json& job) -> std::optional<std::size_t> {
        for (const auto& s : job["shards"]) {
          if (s["state"] != "assigned") continue;
          const auto peer = s["peer"].get<std::string>();
          if (peer == pool.ids[*leader] || peer == pool.ids[submitter]) continue;
          victim_id = peer;
          return s["index"].get<std::size_t>();
        }
        return std::nullopt;
      },
      30s);
  REQUIRE(shard);
  const std::size_t victim = pool.index_of(victim_id);
  pool.kill(victim);
  fmt::print("killed worker {} while it ran shard {}\n", victim_id.substr(0, 8), *shard);

  json job = wait_job(*pool.daemons[submitter], id, 120s);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  REQUIRE(job.is_object());
  REQUIRE(job["state"] == "done");
  const auto& rerun = job["shards"][*shard];
  INFO("victim's log:\n" << pool.daemons[victim]->log());
  INFO("leader's log:\n" << pool.daemons[*leader]->log());
  CHECK(rerun["peer"] != victim_id);
  CHECK(rerun["attempts"].get<int>() >= 2);
  auto written = pool.daemons[submitter]->ctl({"result", id, "--out", (dir / "c.npy").string()}, 60s);
  INFO(written.err);
  REQUIRE(written.status.code == 0);
  CHECK(mismatches(a, b, dir / "c.npy", 2000) == 0);
  fmt::print("2048x1024 by 1024x1024, 8 shards, worker killed: done in {:.1f} s; shard {} re-ran on {} (attempt {})\n",
             seconds, *shard, rerun["peer"].get<std::string>().substr(0, 8), rerun["attempts"].get<int>());
}

TEST_CASE("a job survives the SIGKILL of the Raft leader mid-job", "[integration][jobs]") {
  RunningJob run(512, 256, 128, 5);
  auto& pool = run.pool;
  const Matrix& a = run.a;
  const Matrix& b = run.b;
  const std::string& id = run.id;
  const auto dir = run.dir();
  const auto leader = std::optional<std::size_t>(run.leader);
  const std::size_t submitter = run.submitter;
  // Mid-job: shards assigned, none finished yet.
  REQUIRE(wait_for_shard(
      *pool.daemons[submitter], id,
      [](const json& job) -> std::optional<std::size_t> {
        return job["state"] == "running" ? std::optional<std::size_t>(0) : std::nullopt;
      },
      30s));
  const auto start = Clock::now();
  pool.kill(*leader);
  json job = wait_job(*pool.daemons[submitter], id, 120s);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  REQUIRE(job.is_object());
  REQUIRE(job["state"] == "done");
  auto written = pool.daemons[submitter]->ctl({"result", id, "--out", (dir / "c.npy").string()}, 60s);
  INFO(written.err);
  REQUIRE(written.status.code == 0);
  CHECK(mismatches(a, b, dir / "c.npy") == 0);
  const auto new_leader = pool.wait_for_leader(30s);
  REQUIRE(new_leader);
  CHECK(*new_leader != *leader);
  // The election is in the pool's trace: the new leader asked for votes,
  // a voter granted one (its receive matched to the send), then it led.
  const std::string winner = pool.ids[*new_leader].substr(0, 8);
  json traced = pool.daemons[*new_leader]->ctl_json({"trace"});
  REQUIRE(traced.is_object());
  std::map<std::string, json> sends;
  for (const auto& e : traced["events"]) {
    if (e["kind"] == "send") sends[e["msg_id"].get<std::string>()] = e;
  }
  // The term it leads in now, from its own view.
  json view = pool.daemons[*new_leader]->ctl_json({"leader"});
  REQUIRE(view.is_object());
  const std::string term = std::to_string(view["term"].get<std::uint64_t>());
  bool asked = false, granted = false, led = false;
  for (const auto& e : traced["events"]) {
    const std::string what = e["what"].get<std::string>();
    const std::string host = e["host"].get<std::string>();
    if (host.starts_with(winner) && what.starts_with("ask for a vote in term " + term + " ")) asked = true;
    if (e["kind"] == "recv" && host.starts_with(winner) && sends.contains(e["msg_id"].get<std::string>()) &&
        sends[e["msg_id"].get<std::string>()]["what"].get<std::string>().starts_with("grant a vote in term " + term +
                                                                                     " ")) {
      granted = true;
    }
    if (host.starts_with(winner) && what == "term " + term + ": leader " + winner + " (this node leader)") {
      led = asked && granted;  // after both, in causal order
    }
  }
  INFO("term " << term);
  CHECK(asked);
  CHECK(granted);
  CHECK(led);
  fmt::print("leader killed mid-job: the job finished {:.1f} s later under leader {}\n", seconds, winner);
}

TEST_CASE("a worker that returns wrong results is caught and its shard re-run elsewhere", "[integration][jobs]") {
  JobPool pool;
  const std::size_t liar = 2;
  REQUIRE(pool.start(4, [&](std::size_t i) {
    return i == liar ? std::vector<std::string>{"P2PD_TEST_FAULT=wrong-results"} : std::vector<std::string>{};
  }));
  REQUIRE(pool.wait_until_formed(30s));
  const Matrix a = random_matrix(400, 200, 7);
  const Matrix b = random_matrix(200, 100, 8);
  const auto dir = pool.dir.path();
  json job = pool.submit_and_wait(0, a, b, 4);
  REQUIRE(job.is_object());
  REQUIRE(job["state"] == "done");
  CHECK(mismatches(a, b, dir / "c.npy") == 0);
  // The liar got a shard (four free workers, four shards), failed
  // verification, and someone else's result counts instead.
  INFO(job.dump(2));
  INFO("liar's log:\n" << pool.daemons[liar]->log());
  std::size_t caught = 0;
  for (const auto& shard : job["shards"]) {
    CHECK(shard["peer"] != pool.ids[liar]);
    if (!shard["last_error"].is_null() &&
        shard["last_error"].get<std::string>().find("wrong result") != std::string::npos) {
      ++caught;
      CHECK(shard["attempts"].get<int>() >= 2);
      CHECK(shard["last_error"].get<std::string>().find(pool.ids[liar]) != std::string::npos);
    }
  }
  CHECK(caught >= 1);
  fmt::print("lying worker {} caught on {} shard(s); the result is right\n", pool.ids[liar].substr(0, 8), caught);
}

TEST_CASE("bad job inputs are refused by p2pctl before sending, and by p2pd too", "[integration][jobs]") {
  JobPool pool;
  REQUIRE(pool.start(1));
  REQUIRE(pool.wait_for_leader(30s));
  const auto dir = pool.dir.path();
  save(random_matrix(6, 4, 1), dir / "a.npy");
  save(random_matrix(5, 3, 2), dir / "b_wrong.npy");
  save(random_matrix(4, 3, 3), dir / "b.npy");
  const auto& d = *pool.daemons[0];
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{"submit", "gemm"};
    argv.insert(argv.end(), args.begin(), args.end());
    return d.ctl(argv);
  };
  auto one_line = [](const CommandResult& r) {
    return r.err.starts_with("p2pctl: error: ") && r.err.find('\n') == r.err.size() - 1;
  };

  auto mismatched = run({"--a", (dir / "a.npy").string(), "--b", (dir / "b_wrong.npy").string()});
  CHECK(mismatched.status.code == 1);
  CHECK(one_line(mismatched));
  CHECK_THAT(mismatched.err, Catch::Contains("A's columns must equal B's rows"));

  {  // truncated data
    std::string bytes = read_file(dir / "a.npy");
    std::ofstream(dir / "short.npy", std::ios::binary) << bytes.substr(0, bytes.size() - 5);
  }
  auto truncated = run({"--a", (dir / "short.npy").string(), "--b", (dir / "b.npy").string()});
  CHECK(truncated.status.code == 1);
  CHECK(one_line(truncated));

  {  // float64
    std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
    header += std::string(64 - (10 + header.size() + 1) % 64, ' ') + "\n";
    std::string file = std::string("\x93NUMPY\x01\x00", 8) + char(header.size() & 0xff) + char(header.size() >> 8) +
                       header + std::string(32, '\0');
    std::ofstream(dir / "f8.npy", std::ios::binary) << file;
  }
  auto wrong_dtype = run({"--a", (dir / "f8.npy").string(), "--b", (dir / "b.npy").string()});
  CHECK(wrong_dtype.status.code == 1);
  CHECK(one_line(wrong_dtype));

  auto too_many_shards = run({"--a", (dir / "a.npy").string(), "--b", (dir / "b.npy").string(), "--shards", "7"});
  CHECK(too_many_shards.status.code == 1);
  CHECK_THAT(too_many_shards.err, Catch::Contains("only 6 rows"));

  auto missing = run({"--a", (dir / "nope.npy").string(), "--b", (dir / "b.npy").string()});
  CHECK(missing.status.code == 1);
  CHECK(one_line(missing));

  // Not a .npy at all, empty, and a header claiming an absurd shape.
  std::ofstream(dir / "text.npy", std::ios::binary) << "hello, this is not a numpy file";
  std::ofstream(dir / "empty.npy", std::ios::binary).flush();
  {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 100000000000), }";
    header += std::string(64 - (10 + header.size() + 1) % 64, ' ') + "\n";
    std::ofstream(dir / "huge.npy", std::ios::binary)
        << std::string("\x93NUMPY\x01\x00", 8) + char(header.size() & 0xff) + char(header.size() >> 8) + header;
  }
  for (const char* name : {"text.npy", "empty.npy", "huge.npy"}) {
    INFO(name);
    auto bad = run({"--a", (dir / name).string(), "--b", (dir / "b.npy").string()});
    CHECK(bad.status.code == 1);
    CHECK(one_line(bad));
    CHECK_THAT(bad.err, Catch::Contains(name));
  }
  // None of it reached or hurt the daemon.
  CHECK(d.ctl({"status"}).status.exited_with(0));

  CHECK(run({"--a", (dir / "a.npy").string()}).status.code == 2);
  CHECK(d.ctl({"submit", "conv", "--a", "x", "--b", "y"}).status.code == 2);
  CHECK(d.ctl({"job", "zz"}).status.code == 1);
  CHECK(d.ctl({"result", "0123456789abcdef0123456789abcdef", "--out", (dir / "x.npy").string()}).status.code == 1);
  CHECK_FALSE(std::filesystem::exists(dir / "x.npy"));

  // The daemon does not trust the client: the same checks, over a raw stream.
  auto channel = grpc::CreateChannel("unix:" + d.socket().string(), grpc::InsecureChannelCredentials());
  auto stub = proto::Control::NewStub(channel);
  auto raw_submit = [&](const proto::SubmitHeader& header, std::size_t data_bytes) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    proto::SubmitReply reply;
    auto writer = stub->Submit(&context, &reply);
    proto::SubmitMessage message;
    *message.mutable_header() = header;
    writer->Write(message);
    if (data_bytes > 0) {
      message.set_data(std::string(data_bytes, '\0'));
      writer->Write(message);
    }
    writer->WritesDone();
    return writer->Finish();
  };
  proto::SubmitHeader header;
  header.set_kind("gemm");
  header.set_a_rows(6);
  header.set_a_cols(4);
  header.set_b_rows(5);
  header.set_b_cols(3);
  auto status = raw_submit(header, 0);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(status.error_message(), Catch::Contains("A's columns must equal B's rows"));
  header.set_b_rows(4);
  status = raw_submit(header, (6 * 4 + 4 * 3) * 4 + 4);  // one float too many
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(status.error_message(), Catch::Contains("more data than the header announced"));
  status = raw_submit(header, 8);  // far too little
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(status.error_message(), Catch::Contains("ended early"));
  header.set_a_rows(1u << 20);
  status = raw_submit(header, 0);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  // Still serving, with no job from any of it.
  json jobs = d.ctl_json({"jobs"});
  REQUIRE(jobs.is_object());
  CHECK(jobs["jobs"].empty());
}

// --- traces (issue 6) ---------------------------------------------------------

namespace {

// ShiViz's rules for a log read with its default parser,
// `(?<event>.*)\n(?<host>\S*) (?<clock>{.*})`: two lines per event; each
// host's own entry counts its events 1, 2, 3, ...; clocks never go back on
// a host; every host a clock names appears in the log. Empty when they hold.
std::string shiviz_violation(const std::string& log, std::size_t& events, std::size_t& hosts) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < log.size()) {
    const auto end = log.find('\n', start);
    if (end == std::string::npos) return "the log does not end with a newline";
    lines.push_back(log.substr(start, end - start));
    start = end + 1;
  }
  if (lines.empty() || lines.size() % 2 != 0) return "not two lines per event";
  const std::regex host_line(R"(^(\S*) (\{.*\})$)");
  std::map<std::string, std::map<std::string, std::uint64_t>> last;  // host -> its last clock
  std::set<std::string> named;
  for (std::size_t i = 0; i < lines.size(); i += 2) {
    std::smatch match;
    if (!std::regex_match(lines[i + 1], match, host_line)) return "bad host line: " + lines[i + 1];
    const std::string host = match[1];
    json clock = json::parse(match[2].str(), nullptr, false);
    if (!clock.is_object()) return "bad clock: " + match[2].str();
    auto& previous = last[host];
    std::map<std::string, std::uint64_t> now;
    for (auto& [node, value] : clock.items()) {
      if (!value.is_number_unsigned()) return "a clock entry is not a count";
      now[node] = value.get<std::uint64_t>();
      named.insert(node);
    }
    if (now[host] != previous[host] + 1)
      return fmt::format("host {} counts {} after {}", host, now[host], previous[host]);
    for (const auto& [node, value] : previous) {
      if (now[node] < value) return "a clock went back on host " + host;
    }
    previous = now;
    ++events;
  }
  hosts = last.size();
  for (const auto& node : named) {
    if (!last.contains(node)) return "a clock names host " + node + ", which has no events";
  }
  return {};
}

bool clock_le(const json& a, const json& b) {
  for (auto& [node, value] : a.items()) {
    if (!b.contains(node) || b[node].get<std::uint64_t>() < value.get<std::uint64_t>()) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("a 3-shard job on 3 peers has a causal trace in every format", "[integration][jobs][trace]") {
  JobPool pool;
  REQUIRE(pool.start(3));
  REQUIRE(pool.wait_until_formed(30s));
  json job = pool.submit_and_wait(1, random_matrix(300, 200, 5), random_matrix(200, 100, 6), 3);
  REQUIRE(job.is_object());
  REQUIRE(job["state"] == "done");
  const std::string id = job["job_id"].get<std::string>();
  auto trace = [&](std::vector<std::string> args) {
    auto result = pool.daemons[2]->ctl(args, 30s);
    INFO(result.err);
    REQUIRE(result.status.code == 0);
    return result.out;
  };

  // JSON: every receive has its send, after it in both clocks.
  json traced = json::parse(trace({"--json", "trace", "--job", id.substr(0, 8)}));
  const auto& events = traced["events"];
  REQUIRE(events.size() >= 6);
  std::map<std::string, json> sends;
  std::size_t receives = 0;
  std::set<std::string> hosts;
  std::uint64_t previous_lamport = 0;
  for (const auto& e : events) {
    CHECK(e["job_id"] == id);
    CHECK(e["lamport"].get<std::uint64_t>() >= previous_lamport);  // in causal (Lamport) order
    previous_lamport = e["lamport"].get<std::uint64_t>();
    hosts.insert(e["host"].get<std::string>());
    if (e["kind"] == "send") sends[e["msg_id"].get<std::string>()] = e;
  }
  for (const auto& e : events) {
    if (e["kind"] != "recv") continue;
    ++receives;
    const std::string msg = e["msg_id"].get<std::string>();
    REQUIRE(sends.contains(msg));
    const json& send = sends[msg];
    CHECK(send["lamport"].get<std::uint64_t>() < e["lamport"].get<std::uint64_t>());
    CHECK(clock_le(send["vc"], e["vc"]));
    CHECK(clock_le(send["job_vc"], e["job_vc"]));  // the clock the message carried
    CHECK(send["job_vc"] != e["job_vc"]);
  }
  CHECK(receives >= 1);
  CHECK(hosts.size() >= 2);
  // An assignment reaches its worker through the Raft log, carrying the
  // leader's stamp: the shard's computation comes after the leader's
  // proposal in the vector clock the job's messages carried.
  std::size_t computed = 0;
  for (const auto& e : events) {
    const std::string what = e["what"].get<std::string>();
    if (!what.starts_with("shard ") || !what.ends_with(" computed")) continue;
    ++computed;
    const std::string index = what.substr(6, what.size() - 6 - 9);
    const std::string proposal = "propose assign shard " + index + " to " + e["host"].get<std::string>().substr(0, 12);
    const json* assigned = nullptr;
    for (const auto& [msg, send] : sends) {
      if (send["what"] == proposal) assigned = &send;
    }
    INFO(proposal);
    REQUIRE(assigned != nullptr);
    CHECK((*assigned)["lamport"].get<std::uint64_t>() < e["lamport"].get<std::uint64_t>());
    CHECK(clock_le((*assigned)["job_vc"], e["job_vc"]));
  }
  CHECK(computed == 3);

  // ShiViz: its parser's rules hold.
  std::size_t shiviz_events = 0;
  std::size_t shiviz_hosts = 0;
  const std::string violation =
      shiviz_violation(trace({"trace", "--job", id, "--format", "shiviz"}), shiviz_events, shiviz_hosts);
  CHECK(violation.empty());
  INFO(violation);
  CHECK(shiviz_events == events.size());

  // Chrome trace-event JSON: every flow's end has its start, not later in time.
  json chrome = json::parse(trace({"trace", "--job", id, "--format", "chrome"}));
  REQUIRE(chrome["traceEvents"].is_array());
  std::map<int, double> flow_start;
  std::size_t flows = 0;
  for (const auto& e : chrome["traceEvents"]) {
    REQUIRE(e.contains("ph"));
    REQUIRE(e.contains("pid"));
    if (e["ph"] == "s") flow_start[e["id"].get<int>()] = e["ts"].get<double>();
    if (e["ph"] == "f") {
      REQUIRE(flow_start.contains(e["id"].get<int>()));
      CHECK(flow_start[e["id"].get<int>()] <= e["ts"].get<double>());
      ++flows;
    }
  }
  CHECK(flows == receives);

  // The whole pool's trace holds how it formed (joins: a notify that made
  // a node its successor's predecessor; voters added) and the job, and it
  // too passes ShiViz's rules.
  const std::string text = trace({"trace"});
  CHECK(text.find("leader") != std::string::npos);
  CHECK(text.find("shard 0 verified") != std::string::npos);
  CHECK(text.find("send  notify successor") != std::string::npos);
  CHECK(text.find("ring: predecessor") != std::string::npos);
  CHECK(text.find("add voter") != std::string::npos);
  std::size_t pool_events = 0;
  std::size_t pool_hosts = 0;
  const std::string pool_violation = shiviz_violation(trace({"trace", "--format", "shiviz"}), pool_events, pool_hosts);
  CHECK(pool_violation.empty());
  INFO(pool_violation);
  CHECK(pool_hosts == 3);
  fmt::print(
      "trace of a 3-shard job on 3 peers: {} events on {} hosts, {} receives matched to their sends; "
      "ShiViz rules hold: {}\n",
      events.size(), hosts.size(), receives, violation.empty() ? "yes" : violation);
}

TEST_CASE("p2pctl trace --follow streams the pool's new events as JSON lines until SIGINT",
          "[integration][jobs][trace]") {
  JobPool pool;
  REQUIRE(pool.start(2));
  REQUIRE(pool.wait_until_formed(30s));
  CHECK(pool.daemons[0]->ctl({"trace", "--follow", "--format", "chrome"}).status.code == 2);  // not a stream format

  const auto out = pool.dir.path() / "follow.out";
  const auto err = pool.dir.path() / "follow.err";
  ChildProcess follower(
      {p2pctl_binary(), "--socket", pool.daemons[0]->socket().string(), "--json", "trace", "--follow"}, out, err);
  auto lines = [&] {
    std::vector<json> parsed;
    std::istringstream in(read_file(out));
    for (std::string line; std::getline(in, line);) parsed.push_back(json::parse(line, nullptr, false));
    return parsed;
  };
  // The pool's history so far (starts, the election) comes first.
  REQUIRE(eventually([&] { return !lines().empty(); }, 15s));

  // A job submitted on the other node after the follower attached: its
  // events, recorded on both nodes, arrive while the follower runs.
  json job = pool.submit_and_wait(1, random_matrix(120, 80, 7), random_matrix(80, 60, 8), 2);
  REQUIRE(job.is_object());
  REQUIRE(job["state"] == "done");
  const std::string id = job["job_id"].get<std::string>();
  auto seen = [&](const std::string& what) {
    for (const auto& e : lines()) {
      if (e.is_object() && e.value("job_id", "") == id && e["what"] == what) return true;
    }
    return false;
  };
  CHECK(eventually([&] { return seen("job submitted") && seen("shard 0 verified") && seen("shard 1 verified"); }, 15s));
  REQUIRE(follower.running());
  follower.send_signal(SIGINT);
  auto status = follower.wait_for(5s);
  REQUIRE(status);
  INFO(read_file(err));
  CHECK(status->exited_with(0));

  // Every line is one event, none printed twice, each host's in its order.
  std::map<std::string, std::uint64_t> last_seq;
  std::set<std::pair<std::string, std::uint64_t>> printed;
  std::size_t events = 0;
  for (const auto& e : lines()) {
    REQUIRE(e.is_object());
    const auto host = e["host"].get<std::string>();
    const auto seq = e["seq"].get<std::uint64_t>();
    CHECK(printed.emplace(host, seq).second);
    if (last_seq.contains(host)) CHECK(seq > last_seq[host]);
    last_seq[host] = seq;
    ++events;
  }
  CHECK(last_seq.size() == 2);  // both nodes' events, gathered by the one the follower asks
  fmt::print("trace --follow: {} events from {} hosts streamed, exit {} on SIGINT\n", events, last_seq.size(),
             status->code);
}
