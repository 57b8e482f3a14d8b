#pragma once
// Binds the unchanged chord::Ring core to the simulator: addresses are node
// numbers written as decimal strings, the way p2pd will use HOST:PORT.

#include <charconv>
#include <optional>
#include <string>
#include <vector>

#include "daemon/chord/ring.hpp"
#include "tests/sim/simulator.hpp"

namespace p2pd::sim {

struct ChordEnvelope {
  chord::Peer from;
  chord::Message body;
};

// What survives a crash: the node's id (derived from its key on disk in p2pd).
struct ChordDurable {
  std::optional<NodeId> id;
};

inline NodeId random_node_id(Rng& rng) {
  NodeId::Bytes bytes{};
  for (std::size_t i = 0; i < bytes.size(); i += 8) {
    const std::uint64_t word = rng.next();
    for (std::size_t k = 0; k < 8 && i + k < bytes.size(); ++k)
      bytes[i + k] = static_cast<std::uint8_t>(word >> (8 * k));
  }
  return NodeId(bytes);
}

class ChordNode final : public Process<ChordEnvelope> {
 public:
  ChordNode(Address self, ChordDurable& durable, Rng& rng, std::optional<Address> bootstrap,
            const chord::RingConfig& config)
      : m_ring(chord::Peer{ensure_id(durable, rng), std::to_string(self)}, config) {
    if (bootstrap && *bootstrap != self) {
      m_ring.join(std::to_string(*bootstrap));
    } else {
      m_ring.create();
    }
  }

  void tick() override { m_ring.tick(); }
  void receive(Address /*from*/, const ChordEnvelope& envelope) override {
    m_ring.receive(envelope.from, envelope.body);
  }
  std::vector<Outgoing<ChordEnvelope>> take_outbox() override {
    std::vector<Outgoing<ChordEnvelope>> out;
    for (auto& message : m_ring.take_outbox()) {
      Address to = 0;
      const auto& addr = message.to_addr;
      const auto [end, ec] = std::from_chars(addr.data(), addr.data() + addr.size(), to);
      if (ec != std::errc{} || end != addr.data() + addr.size()) continue;  // not an address of this network
      out.push_back({to, ChordEnvelope{m_ring.self(), std::move(message.message)}});
    }
    return out;
  }

  [[nodiscard]] const chord::Ring& ring() const { return m_ring; }

 private:
  static NodeId ensure_id(ChordDurable& durable, Rng& rng) {
    if (!durable.id) durable.id = random_node_id(rng);
    return *durable.id;
  }
  chord::Ring m_ring;
};

}  // namespace p2pd::sim
