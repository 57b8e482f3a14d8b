// Reproduces the Raft paper's election-time measurement (Ongaro &
// Ousterhout, USENIX ATC 2014, §9.3, Figure 16): five servers, the leader
// crashes at a random moment, and we time until a new leader is elected,
// for several election-timeout ranges. The paper's rows run the paper's
// algorithm (no pre-vote or check-quorum) at 1 ms ticks; the last row is
// p2pd's configuration (50 ms ticks, 1-2 s timeouts, pre-vote and
// check-quorum on). A benchmark, not a test: scripts/bench-raft.sh runs it.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/sim/raft_node.hpp"

using namespace p2pd;
using namespace p2pd::sim;
using namespace std::chrono_literals;

namespace {

using RaftSim = Simulator<RaftEnvelope, RaftDurable>;

struct Setup {
  const char* name;
  Duration tick;
  raft::RaftConfig config;
  LinkModel link;
  std::size_t trials;
  const char* paper;  // what Figure 16 / §9.3 reports for this range
};

raft::RaftConfig paper_config(std::uint32_t election_ms, std::uint32_t jitter_ms, std::uint32_t heartbeat_ms) {
  raft::RaftConfig c;
  c.heartbeat_ticks = heartbeat_ms;
  c.election_ticks = election_ms;
  c.election_jitter_ticks = jitter_ms;
  c.pre_vote = false;
  c.check_quorum = false;
  return c;
}

std::optional<Address> leader_of(RaftSim& sim, raft::Term above) {
  for (Address a = 0; a < sim.size(); ++a) {
    auto* n = sim.process_as<RaftNode>(a);
    if (n != nullptr && n->raft().role() == raft::Role::leader && n->raft().term() > above) return a;
  }
  return std::nullopt;
}

// Milliseconds without a leader after each crash; -1 for "none within the limit".
std::vector<double> measure(const Setup& setup, std::uint64_t seed) {
  RaftHistory history;
  RaftSim sim(SimConfig{seed, setup.tick, setup.link}, [&](Address self, RaftDurable& durable, Rng& rng) {
    return std::make_unique<RaftNode>(self, 5, durable, rng, history, setup.config);
  });
  for (int i = 0; i < 5; ++i) sim.add_node();
  Rng rng(seed * 13 + 7);
  const Duration step = std::max(setup.tick, Duration{1000});
  const Duration limit = 30s;
  std::vector<double> times;
  std::optional<Address> leader;
  for (Duration waited{0}; !leader && waited < limit; waited += step) {
    sim.run_for(step);
    leader = leader_of(sim, 0);
  }
  if (!leader) return {-1};
  for (std::size_t trial = 0; trial < setup.trials; ++trial) {
    // Settle, then crash the leader at a random point of its heartbeat interval.
    const auto heartbeat = setup.tick * setup.config.heartbeat_ticks;
    sim.run_for(Duration{static_cast<std::int64_t>(rng.uniform(0, static_cast<std::uint64_t>(heartbeat.count())))} +
                heartbeat * 5);
    const raft::Term term = sim.process_as<RaftNode>(*leader)->raft().term();
    sim.crash(*leader);
    const auto crashed = *leader;
    const auto start = sim.now();
    leader.reset();
    for (Duration waited{0}; !leader && waited < limit; waited += step) {
      sim.run_for(step);
      leader = leader_of(sim, term);
    }
    times.push_back(leader ? static_cast<double>((sim.now() - start).count()) / 1000.0 : -1);
    sim.restart(crashed);
    if (!leader) break;  // no leader for the limit: the range cannot elect; stop here
  }
  return times;
}

std::string millis(double ms) {
  return ms < 0 ? std::string(">30 s") : fmt::format("{:.0f}", ms);
}

}  // namespace

int main(int argc, char** argv) {
  const double scale = argc > 1 ? std::strtod(argv[1], nullptr) : 1.0;  // fraction of the trials
  const LinkModel lan{1ms, 3ms, 0.0, 0.0};                              // a LAN: a few ms per broadcast
  const auto trials = [&](std::size_t n) { return std::max<std::size_t>(1, static_cast<std::size_t>(n * scale)); };
  raft::RaftConfig p2pd_config;  // the defaults p2pd runs with
  const std::vector<Setup> setups = {
      {"150-150 ms", 1ms, paper_config(150, 0, 50), lan, trials(20), "no randomness: >10 s (split votes)"},
      {"150-151 ms", 1ms, paper_config(150, 1, 50), lan, trials(1000), "1 ms of randomness: long tail"},
      {"150-155 ms", 1ms, paper_config(150, 5, 50), lan, trials(1000), "median 287 ms"},
      {"150-175 ms", 1ms, paper_config(150, 25, 50), lan, trials(1000), ""},
      {"150-200 ms", 1ms, paper_config(150, 50, 50), lan, trials(1000), "worst of 1000: 513 ms"},
      {"150-300 ms", 1ms, paper_config(150, 150, 50), lan, trials(1000), ""},
      {"12-24 ms", 1ms, paper_config(12, 12, 4), LinkModel{1ms, 3ms, 0.0, 0.0}, trials(1000),
       "mean 35 ms, worst 152 ms"},
      {"p2pd 1000-1950 ms", 50ms, p2pd_config, lan, trials(200), "(p2pd: pre-vote, check-quorum, 50 ms ticks)"},
  };
  std::printf("Raft: time without a leader after the leader crashes (5 servers, one-way latency %s)\n", "1-3 ms");
  std::printf("%-18s %7s %8s %8s %8s %8s %8s %8s   %s\n", "election timeout", "trials", "min", "mean", "median", "p90",
              "p99", "max", "paper (Figure 16, §9.3)");
  for (const auto& setup : setups) {
    const auto started = std::chrono::steady_clock::now();
    auto times = measure(setup, 42);
    std::sort(times.begin(), times.end(), [](double a, double b) {
      if (a < 0) return false;
      if (b < 0) return true;
      return a < b;
    });
    auto at = [&](double q) { return times[std::min(times.size() - 1, static_cast<std::size_t>(q * times.size()))]; };
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    double sum = 0;
    for (double t : times) sum += t < 0 ? 30000.0 : t;
    const double mean = times.back() < 0 ? -1 : sum / static_cast<double>(times.size());
    std::printf("%-18s %7zu %8s %8s %8s %8s %8s %8s   %s  (%.0f s)\n", setup.name, times.size(),
                millis(times.front()).c_str(), millis(mean).c_str(), millis(at(0.5)).c_str(), millis(at(0.9)).c_str(),
                millis(at(0.99)).c_str(), millis(times.back()).c_str(), setup.paper, seconds);
    std::fflush(stdout);
  }
  return 0;
}
