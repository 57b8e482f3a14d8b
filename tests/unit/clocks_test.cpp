// Logical clocks (common/clocks): checked against the happened-before
// relation itself, computed by reachability over a random run's events.
#include <catch2/catch.hpp>

#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "common/clocks.hpp"
#include "common/rng.hpp"

using namespace p2pd;
using namespace p2pd::clocks;

namespace {

struct Event {
  int process = 0;
  std::uint64_t lamport = 0;
  VectorClock vc;
  HlcTimestamp hlc;
  std::uint64_t physical = 0;
  std::vector<std::size_t> causes;  // the previous event of the process, and the send of a receive
};

struct Message {
  std::uint64_t lamport;
  VectorClock vc;
  HlcTimestamp hlc;
  std::size_t send_event;
};

struct Process {
  std::string name;
  LamportClock lamport;
  VectorClock vc;
  std::unique_ptr<HybridClock> hlc;
  std::int64_t offset_ms = 0;  // of its physical clock from true time
  std::optional<std::size_t> last_event;
  std::deque<Message> inbox;
};

// A random run of `processes` processes with skewed physical clocks.
std::vector<Event> random_run(std::uint64_t seed, int processes, int steps, std::uint64_t& true_time_ms,
                              std::int64_t max_skew_ms) {
  Rng rng(seed);
  std::vector<Process> ps(static_cast<std::size_t>(processes));
  for (int i = 0; i < processes; ++i) {
    auto& p = ps[static_cast<std::size_t>(i)];
    p.name = "node" + std::to_string(i);
    p.offset_ms = static_cast<std::int64_t>(rng.uniform(0, static_cast<std::uint64_t>(2 * max_skew_ms))) - max_skew_ms;
    p.hlc = std::make_unique<HybridClock>(
        [&true_time_ms, offset = p.offset_ms] { return static_cast<std::uint64_t>(true_time_ms + offset); },
        static_cast<std::uint64_t>(4 * max_skew_ms));
  }
  std::vector<Event> events;
  for (int step = 0; step < steps; ++step) {
    true_time_ms += rng.uniform(0, 3);  // often the same millisecond: c must count
    auto& p = ps[rng.uniform(0, static_cast<std::uint64_t>(processes - 1))];
    const int self = static_cast<int>(&p - ps.data());
    Event e;
    e.process = self;
    if (p.last_event) e.causes.push_back(*p.last_event);
    const auto kind = rng.uniform(0, 2);
    if (kind == 2 && !p.inbox.empty()) {  // receive
      Message m = std::move(p.inbox.front());
      p.inbox.pop_front();
      e.causes.push_back(m.send_event);
      e.lamport = p.lamport.receive(m.lamport);
      p.vc.merge(m.vc);
      p.vc.tick(p.name);
      e.hlc = p.hlc->receive(m.hlc).time;
    } else {  // local, or a send
      e.lamport = p.lamport.tick();
      p.vc.tick(p.name);
      e.hlc = p.hlc->now();
    }
    e.vc = p.vc;
    e.physical = true_time_ms;
    events.push_back(e);
    p.last_event = events.size() - 1;
    if (kind == 1) {
      auto& to = ps[rng.uniform(0, static_cast<std::uint64_t>(processes - 1))];
      if (&to != &p) to.inbox.push_back(Message{e.lamport, e.vc, e.hlc, events.size() - 1});
    }
  }
  return events;
}

// happened_before[a][b]: a -> b, by reachability over the causes.
std::vector<std::vector<bool>> happened_before(const std::vector<Event>& events) {
  const std::size_t n = events.size();
  std::vector<std::vector<bool>> hb(n, std::vector<bool>(n, false));
  for (std::size_t b = 0; b < n; ++b) {  // causes always come earlier in the run
    for (std::size_t cause : events[b].causes) {
      hb[cause][b] = true;
      for (std::size_t a = 0; a < n; ++a) {
        if (hb[a][cause]) hb[a][b] = true;
      }
    }
  }
  return hb;
}

}  // namespace

TEST_CASE("clocks agree with happened-before on random runs", "[unit][clocks]") {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    INFO("seed " << seed);
    std::uint64_t true_time = 1'700'000'000'000;
    const auto events = random_run(seed, 5, 250, true_time, 50);
    const auto hb = happened_before(events);
    std::size_t related = 0;
    std::size_t concurrent = 0;
    for (std::size_t a = 0; a < events.size(); ++a) {
      for (std::size_t b = 0; b < events.size(); ++b) {
        if (a == b) continue;
        const auto order = events[a].vc.compare(events[b].vc);
        if (hb[a][b]) {
          ++related;
          // Lamport: a -> b implies L(a) < L(b) (the converse need not hold).
          REQUIRE(events[a].lamport < events[b].lamport);
          // HLC: a -> b implies hlc(a) < hlc(b).
          REQUIRE(events[a].hlc < events[b].hlc);
          // Vector clocks characterize it: a -> b iff V(a) < V(b).
          REQUIRE(order == CausalOrder::before);
        } else if (!hb[b][a]) {
          ++concurrent;
          REQUIRE(order == CausalOrder::concurrent);  // concurrency detected
        } else {
          REQUIRE(order == CausalOrder::after);
        }
      }
    }
    CHECK(related > 0);
    CHECK(concurrent > 0);
  }
}

TEST_CASE("the hybrid clock stays within the clock skew of physical time", "[unit][clocks]") {
  std::uint64_t true_time = 1'700'000'000'000;
  const std::int64_t skew = 50;
  const auto events = random_run(99, 6, 2000, true_time, skew);
  for (const auto& e : events) {
    // Never behind its own physical clock, never ahead of the fastest one.
    REQUIRE(e.hlc.l + static_cast<std::uint64_t>(skew) >= e.physical);
    REQUIRE(e.hlc.l <= e.physical + static_cast<std::uint64_t>(skew));
  }
}

TEST_CASE("the hybrid clock survives its physical clock jumping backwards", "[unit][clocks]") {
  std::uint64_t physical = 10'000;
  HybridClock hlc([&] { return physical; }, 1000);
  const auto before = hlc.now();
  CHECK(before == HlcTimestamp{10'000, 0});
  physical = 9'000;  // NTP steps the clock back a second
  auto previous = before;
  for (int i = 0; i < 5; ++i) {
    const auto t = hlc.now();
    CHECK(t > previous);  // still monotonic
    CHECK(t.l == 10'000);
    previous = t;
  }
  CHECK(previous.c == 5);
  physical = 10'001;  // caught up: back to physical time, c starts again
  CHECK(hlc.now() == HlcTimestamp{10'001, 0});
}

TEST_CASE("the hybrid clock follows a peer a little ahead but not one far ahead", "[unit][clocks]") {
  std::uint64_t physical = 10'000;
  HybridClock hlc([&] { return physical; }, 500);
  auto near = hlc.receive({10'200, 7});
  CHECK(near.followed);
  CHECK(near.time == HlcTimestamp{10'200, 8});
  auto far = hlc.receive({99'999'999, 0});
  CHECK_FALSE(far.followed);
  CHECK(far.time == HlcTimestamp{10'200, 9});  // still after what it saw
  CHECK(hlc.receive({10'200, 20}).time == HlcTimestamp{10'200, 21});
}

TEST_CASE("a Lamport clock ignores a stamp that would wrap it", "[unit][clocks]") {
  LamportClock clock;
  CHECK(clock.tick() == 1);
  CHECK(clock.receive(41) == 42);
  CHECK(clock.receive(UINT64_MAX) == 43);
  CHECK(clock.receive(LamportClock::kMaxTime) == LamportClock::kMaxTime + 1);
}

TEST_CASE("sparse vector clocks compare as if missing nodes were zero", "[unit][clocks]") {
  VectorClock a;
  VectorClock b;
  CHECK(a.compare(b) == CausalOrder::equal);
  a.tick("x");
  CHECK(b.compare(a) == CausalOrder::before);
  CHECK(a.compare(b) == CausalOrder::after);
  b.tick("y");
  CHECK(a.compare(b) == CausalOrder::concurrent);
  b.merge(a);
  CHECK(a.compare(b) == CausalOrder::before);
  CHECK(a.le(b));
  CHECK(b.get("x") == 1);
  CHECK(b.get("z") == 0);
  b.set("y", 0);
  CHECK(b == a);
  CHECK(b.entries().size() == 1);
}
