// Reproduces the Chord paper's path-length measurement (Stoica et al.,
// SIGCOMM 2001, §6.3, Fig. 10a; ToN 2003, §V-C): the mean number of nodes a
// lookup visits in an N-node ring is about ½·log2 N. Runs the unchanged
// overlay core on N = 2^3..2^12 simulated nodes, once routing with fingers
// only (the paper's algorithm) and once with the successor list as well
// (p2pd's default), and prints both beside ½·log2 N. A benchmark, not a
// test: it asserts nothing; scripts/bench-chord.sh runs it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/sim/chord_harness.hpp"

using namespace p2pd;
using namespace p2pd::sim;

namespace {

struct PathStats {
  double mean = 0;
  std::size_t p1 = 0, p99 = 0;
  std::size_t wrong = 0;
  std::size_t lookups = 0;
};

PathStats measure(std::size_t nodes, bool route_through_successors, std::uint64_t seed, std::size_t lookups) {
  chord::OverlayConfig config;
  config.ring.route_through_successors = route_through_successors;
  auto sim = make_sim(seed, LinkModel{1ms, 20ms, 0.0, 0.0}, config);
  // Joins in waves, so the ring (and its fingers) grow as a real pool does.
  std::optional<std::string> why;
  for (std::size_t added = 0; added < nodes;) {
    const std::size_t wave = std::max<std::size_t>(1, added / 2);
    for (std::size_t i = 0; i < wave && added < nodes; ++i, ++added) sim.add_node();
    if (!converges(sim, 1800s, why)) {
      std::fprintf(stderr, "ring of %zu did not converge: %s\n", added, why ? why->c_str() : "");
      std::exit(1);
    }
  }
  sim.run_for(60s);  // a full fix_fingers round everywhere
  const auto members = live_members(sim);
  Rng rng(seed * 977 + nodes);
  std::vector<std::size_t> hops;
  PathStats stats;
  constexpr std::size_t kBatch = 200;
  for (std::size_t done = 0; done < lookups; done += kBatch) {
    std::vector<Address> at;
    std::vector<NodeId> keys;
    for (std::size_t i = 0; i < kBatch && done + i < lookups; ++i) {
      at.push_back(static_cast<Address>(rng.uniform(0, sim.size() - 1)));
      keys.push_back(random_node_id(rng));
    }
    const auto results =
        run_operations(sim, at, [&](chord::Overlay& overlay, std::size_t i) { return overlay.lookup(keys[i]); });
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (!results[i].ok || results[i].holders.empty() ||
          results[i].holders.front().id != true_owner(members, keys[i])) {
        ++stats.wrong;
      }
      hops.push_back(results[i].path.size());
    }
  }
  std::sort(hops.begin(), hops.end());
  stats.lookups = hops.size();
  double sum = 0;
  for (auto h : hops) sum += static_cast<double>(h);
  stats.mean = sum / static_cast<double>(hops.size());
  stats.p1 = hops[hops.size() / 100];
  stats.p99 = hops[hops.size() * 99 / 100];
  return stats;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t max_exponent = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 12;
  const std::size_t lookups = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 2000;
  std::printf("Chord path length (hops = nodes a lookup asks), %zu lookups of random keys per row\n", lookups);
  std::printf("%6s %10s | %-27s | %-27s | %s\n", "N", "½·log2 N", "fingers only (the paper)",
              "fingers + successor list", "wrong owners");
  std::printf("%6s %10s | %8s %6s %6s %5s | %8s %6s %6s %5s |\n", "", "", "mean", "p1", "p99", "ratio", "mean", "p1",
              "p99", "ratio");
  for (std::size_t e = 3; e <= max_exponent; ++e) {
    const std::size_t n = std::size_t{1} << e;
    const auto started = std::chrono::steady_clock::now();
    const double paper = 0.5 * static_cast<double>(e);
    const auto fingers = measure(n, false, e, lookups);
    const auto both = measure(n, true, e, lookups);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf("%6zu %10.2f | %8.2f %6zu %6zu %5.2f | %8.2f %6zu %6zu %5.2f | %zu  (%.0f s)\n", n, paper, fingers.mean,
                fingers.p1, fingers.p99, fingers.mean / paper, both.mean, both.p1, both.p99, both.mean / paper,
                fingers.wrong + both.wrong, seconds);
    std::fflush(stdout);
  }
  return 0;
}
