#pragma once
// A deterministic network for sans-IO protocol cores (DESIGN.md: "the
// simulator in tests/sim binds the very same objects to a virtual network").
//
// Hundreds of nodes share one thread and one virtual clock. Every random
// choice (latency, loss, duplication, tick phase, each node's own RNG) comes
// from one seed, so a run is a pure function of (seed, scenario): a failure
// prints its seed and replays exactly. Modelled on libtorrent's libsimulator
// and etcd/raft's network tests.
//
// A node is a Process: the test's adapter around a core. The simulator calls
// tick() every tick_interval of virtual time and receive() for each delivered
// message, then drains take_outbox(). Durable state (what the core persisted)
// lives outside the process and survives crash/restart; everything else is
// lost with the crash, as on a real machine.

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common/rng.hpp"

namespace p2pd::sim {

using Address = std::uint32_t;
using Duration = std::chrono::microseconds;

struct LinkModel {
  Duration min_latency{1'000};
  Duration max_latency{10'000};  // uniform in [min, max]: reordering falls out of it
  double loss = 0.0;             // probability a message is dropped
  double duplicate = 0.0;        // probability a message is delivered twice
};

template <class Message>
struct Outgoing {
  Address to;
  Message message;
};

template <class Message>
class Process {
 public:
  virtual ~Process() = default;
  virtual void tick() = 0;
  virtual void receive(Address from, const Message& message) = 0;
  virtual std::vector<Outgoing<Message>> take_outbox() = 0;
};

struct SimConfig {
  std::uint64_t seed = 1;
  Duration tick_interval{50'000};
  LinkModel link;
};

struct SimStats {
  std::uint64_t sent = 0;
  std::uint64_t delivered = 0;
  std::uint64_t dropped_loss = 0;
  std::uint64_t dropped_partition = 0;
  std::uint64_t dropped_down = 0;  // the destination was down, or restarted since the send
  std::uint64_t duplicated = 0;
  std::uint64_t ticks = 0;
  // Smallest and largest one-way delay of any delivered message.
  Duration min_latency = Duration::max();
  Duration max_latency = Duration::zero();
};

// A core's message type may provide `std::uint64_t sim_fingerprint(const M&)`
// (found by ADL); the simulator then mixes payloads into its digest, so two
// runs that send different contents never look the same.
template <class M>
concept Fingerprinted = requires(const M& m) {
  { sim_fingerprint(m) } -> std::convertible_to<std::uint64_t>;
};

template <class Message, class Durable>
class Simulator {
 public:
  using ProcessPtr = std::unique_ptr<Process<Message>>;
  // Builds a node's process at start and at every restart. `rng` is the
  // node's own seeded generator, to be injected into the core.
  using Factory = std::function<ProcessPtr(Address self, Durable& durable, Rng& rng)>;
  // Returns a description of the violation, or nullopt when it holds.
  using Invariant = std::function<std::optional<std::string>()>;

  Simulator(SimConfig config, Factory factory) : m_config(config), m_factory(std::move(factory)), m_rng(config.seed) {}

  Address add_node() {
    const auto self = static_cast<Address>(m_nodes.size());
    m_nodes.emplace_back();
    start(self);
    return self;
  }

  void crash(Address node) {
    Node& n = m_nodes.at(node);
    if (!n.process) return;
    n.process.reset();
    ++n.incarnation;  // pending ticks and deliveries of the old life are void
    mix(0xc1, node, 0);
  }

  // A new incarnation: like a rebooted machine behind TCP, it receives
  // nothing that was sent to its previous life, including while it was down.
  void restart(Address node) {
    Node& n = m_nodes.at(node);
    if (n.process) return;
    ++n.incarnation;
    start(node);
  }

  [[nodiscard]] bool is_up(Address node) const { return m_nodes.at(node).process != nullptr; }
  [[nodiscard]] std::size_t size() const { return m_nodes.size(); }

  // Nodes in different groups cannot reach each other; nodes in no group
  // form one group of their own (the rest of the network).
  void partition(const std::vector<std::vector<Address>>& groups) {
    for (auto& n : m_nodes) n.group = 0;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      for (Address a : groups[g]) m_nodes.at(a).group = static_cast<int>(g + 1);
    }
  }
  void isolate(Address node) { m_nodes.at(node).group = -1 - static_cast<int>(node); }
  // One-way: messages from `from` to `to` are lost.
  void block(Address from, Address to) { m_blocked.emplace(from, to); }
  void heal() {
    for (auto& n : m_nodes) n.group = 0;
    m_blocked.clear();
  }
  void set_link(const LinkModel& link) { m_config.link = link; }

  void add_invariant(std::string name, Invariant check) {
    m_invariants.emplace_back(std::move(name), std::move(check));
  }

  // Processes the next event. False when nothing is left or an invariant failed.
  bool step() {
    if (m_failure || m_events.empty()) return false;
    auto handle = m_events.extract(m_events.begin());
    m_now = handle.key().first;
    m_last_stepped.reset();
    Event& event = handle.mapped();
    Node& node = m_nodes.at(event.to);
    if (event.incarnation != node.incarnation || !node.process) {
      if (event.message) {
        ++m_stats.dropped_down;
        mix(0xdd, event.from, event.to);
      }
    } else if (event.message) {
      if (!can_reach(event.from, event.to)) {
        ++m_stats.dropped_partition;
        mix(0xdb, event.from, event.to);
      } else {
        ++m_stats.delivered;
        m_stats.min_latency = std::min(m_stats.min_latency, m_now - event.sent_at);
        m_stats.max_latency = std::max(m_stats.max_latency, m_now - event.sent_at);
        mix(0xd1, event.from, event.to);
        if constexpr (Fingerprinted<Message>) mix(0xf1, sim_fingerprint(*event.message), 0);
        m_last_stepped = event.to;
        node.process->receive(event.from, *event.message);
        drain(event.to);
      }
    } else {
      ++m_stats.ticks;
      mix(0x71, event.to, 0);
      m_last_stepped = event.to;
      node.process->tick();
      drain(event.to);
      schedule(event.to, std::nullopt, event.to, m_config.tick_interval);
    }
    check_invariants();
    return !m_failure;
  }

  // Runs until virtual time advances by `span` (or a failure).
  void run_for(Duration span) {
    const Duration until = m_now + span;
    while (!m_failure && !m_events.empty() && m_events.begin()->first.first <= until) step();
    if (!m_failure) m_now = std::max(m_now, until);
  }

  // Runs until `done()` holds, checked after every event, for at most `limit`
  // of virtual time. True when done.
  bool run_until(const std::function<bool()>& done, Duration limit) {
    const Duration until = m_now + limit;
    if (done()) return true;
    while (!m_failure && !m_events.empty() && m_events.begin()->first.first <= until) {
      step();
      if (done()) return true;
    }
    return false;
  }

  [[nodiscard]] Duration now() const { return m_now; }
  // The node whose process handled the last event (a tick or a delivery):
  // the only one whose state can have changed, so per-node invariants need
  // to look at it alone.
  [[nodiscard]] std::optional<Address> last_stepped() const { return m_last_stepped; }
  [[nodiscard]] std::uint64_t seed() const { return m_config.seed; }
  [[nodiscard]] const SimStats& stats() const { return m_stats; }
  // A running hash of everything that happened, with its virtual time: ticks,
  // deliveries (and payloads, for Fingerprinted messages), drops, crashes and
  // restarts. Equal digests mean the same run.
  [[nodiscard]] std::uint64_t digest() const { return m_digest; }
  // "invariant 'X' violated at t=... (seed S): ..." once one failed.
  [[nodiscard]] const std::optional<std::string>& failure() const { return m_failure; }

  Process<Message>* process(Address node) { return m_nodes.at(node).process.get(); }
  template <class P>
  P* process_as(Address node) {
    return static_cast<P*>(m_nodes.at(node).process.get());
  }
  Durable& durable(Address node) { return m_nodes.at(node).durable; }

 private:
  struct Node {
    ProcessPtr process;
    Durable durable{};
    Rng rng{0};
    std::uint64_t incarnation = 0;
    int group = 0;
  };
  struct Event {
    Address from = 0;
    Address to = 0;
    std::uint64_t incarnation = 0;
    Duration sent_at{0};
    std::optional<Message> message;  // nullopt: a tick
  };
  // Ordered by (time, sequence): ties resolve in scheduling order, never by
  // address or pointer, so the order is the same on every run.
  using EventKey = std::pair<Duration, std::uint64_t>;

  void start(Address self) {
    Node& n = m_nodes.at(self);
    n.rng = m_rng.fork();
    n.process = m_factory(self, n.durable, n.rng);
    // Each node ticks with its own phase, as real machines do.
    const Duration phase{
        static_cast<std::int64_t>(m_rng.uniform(1, static_cast<std::uint64_t>(m_config.tick_interval.count())))};
    schedule(self, std::nullopt, self, phase);
    mix(0x5a, self, n.incarnation);
    drain(self);
  }

  void schedule(Address to, std::optional<Message> message, Address from, Duration delay) {
    m_events.emplace(EventKey{m_now + delay, m_sequence++},
                     Event{from, to, m_nodes.at(to).incarnation, m_now, std::move(message)});
  }

  bool can_reach(Address from, Address to) const {
    if (m_nodes.at(from).group != m_nodes.at(to).group) return false;
    return !m_blocked.contains({from, to});
  }

  Duration draw_latency() {
    const auto lo = static_cast<std::uint64_t>(m_config.link.min_latency.count());
    const auto hi = static_cast<std::uint64_t>(std::max(m_config.link.max_latency, m_config.link.min_latency).count());
    return Duration{static_cast<std::int64_t>(m_rng.uniform(lo, hi))};
  }

  void drain(Address from) {
    Node& node = m_nodes.at(from);
    if (!node.process) return;
    for (auto& out : node.process->take_outbox()) {
      ++m_stats.sent;
      if (out.to >= m_nodes.size()) continue;  // no such node: lost
      if (m_rng.chance(m_config.link.loss)) {
        ++m_stats.dropped_loss;
        mix(0xd0, from, out.to);
        continue;
      }
      if (!can_reach(from, out.to)) {
        ++m_stats.dropped_partition;
        mix(0xdb, from, out.to);
        continue;
      }
      if (m_rng.chance(m_config.link.duplicate)) {
        ++m_stats.duplicated;
        schedule(out.to, out.message, from, draw_latency());
      }
      schedule(out.to, std::move(out.message), from, draw_latency());
    }
  }

  void check_invariants() {
    for (const auto& [name, check] : m_invariants) {
      if (auto violation = check()) {
        m_failure = fmt::format("invariant '{}' violated at t={}us (seed {}): {}", name, m_now.count(), m_config.seed,
                                *violation);
        return;
      }
    }
  }

  // FNV-1a over the event history.
  void mix(std::uint64_t kind, std::uint64_t a, std::uint64_t b) {
    for (std::uint64_t word : {kind, static_cast<std::uint64_t>(m_now.count()), a, b}) {
      for (int i = 0; i < 8; ++i) {
        m_digest ^= (word >> (8 * i)) & 0xff;
        m_digest *= 0x100000001b3ULL;
      }
    }
  }

  SimConfig m_config;
  Factory m_factory;
  Rng m_rng;
  std::deque<Node> m_nodes;  // a deque: processes hold references to their Durable and Rng
  std::map<EventKey, Event> m_events;
  std::set<std::pair<Address, Address>> m_blocked;
  std::vector<std::pair<std::string, Invariant>> m_invariants;
  Duration m_now{0};
  std::uint64_t m_sequence = 0;
  std::uint64_t m_digest = 0xcbf29ce484222325ULL;
  SimStats m_stats;
  std::optional<std::string> m_failure;
  std::optional<Address> m_last_stepped;
};

}  // namespace p2pd::sim
