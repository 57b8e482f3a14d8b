#pragma once
// A tiny sans-IO core used to test the simulator itself: push-pull
// anti-entropy of a maximum (Demers et al., "Epidemic algorithms", 1987).
// Each node persists the largest value it has seen and, every `period`
// ticks, sends it to a random peer; a peer holding less adopts it, a peer
// holding more answers with its own.

#include <cstdint>
#include <vector>

#include "common/rng.hpp"
#include "tests/sim/simulator.hpp"

namespace p2pd::sim {

struct GossipMessage {
  std::uint64_t value = 0;
  bool is_reply = false;
};

inline std::uint64_t sim_fingerprint(const GossipMessage& m) {
  return m.value * 2 + (m.is_reply ? 1 : 0);
}

struct GossipDurable {
  std::uint64_t value = 0;
  std::uint64_t restarts = 0;
};

class GossipMax final : public Process<GossipMessage> {
 public:
  GossipMax(Address self, std::uint32_t nodes, GossipDurable& durable, Rng& rng, std::uint32_t period)
      : m_self(self), m_nodes(nodes), m_durable(durable), m_rng(rng), m_period(period) {}

  void tick() override {
    if (m_nodes < 2 || ++m_ticks % m_period != 0) return;
    auto peer = static_cast<Address>(m_rng.uniform(0, m_nodes - 2));
    if (peer >= m_self) ++peer;
    m_outbox.push_back({peer, GossipMessage{m_durable.value, false}});
  }

  void receive(Address from, const GossipMessage& message) override {
    ++m_received;
    if (message.value > m_durable.value) {
      m_durable.value = message.value;  // "persisted" before any answer
    } else if (message.value < m_durable.value && !message.is_reply) {
      m_outbox.push_back({from, GossipMessage{m_durable.value, true}});
    }
  }

  std::vector<Outgoing<GossipMessage>> take_outbox() override { return std::exchange(m_outbox, {}); }

  [[nodiscard]] std::uint64_t value() const { return m_durable.value; }
  [[nodiscard]] std::uint64_t received() const { return m_received; }

 private:
  Address m_self;
  std::uint32_t m_nodes;
  GossipDurable& m_durable;
  Rng& m_rng;
  std::uint32_t m_period;
  std::uint64_t m_ticks = 0;
  std::uint64_t m_received = 0;
  std::vector<Outgoing<GossipMessage>> m_outbox;
};

}  // namespace p2pd::sim
