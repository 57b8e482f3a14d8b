#pragma once
// Binds the unchanged chord::Overlay core (ring + key-value store) to the
// simulator: addresses are node numbers written as decimal strings, the way
// p2pd uses HOST:PORT, and a request's reply travels back as a datagram of
// its own (p2pd carries it on the request's RPC).

#include <charconv>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/chord/overlay.hpp"
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
            const chord::OverlayConfig& config)
      : m_overlay(chord::Peer{ensure_id(durable, rng), std::to_string(self)}, config) {
    if (bootstrap && *bootstrap != self) {
      m_overlay.join(std::to_string(*bootstrap));
    } else {
      m_overlay.create();
    }
  }

  void tick() override { m_overlay.tick(); }
  void receive(Address /*from*/, const ChordEnvelope& envelope) override {
    if (auto reply = m_overlay.receive(envelope.from, envelope.body)) {
      m_replies.push_back(chord::Outgoing{envelope.from.addr, std::move(*reply)});
    }
  }
  std::vector<Outgoing<ChordEnvelope>> take_outbox() override {
    std::vector<Outgoing<ChordEnvelope>> out;
    auto messages = std::exchange(m_replies, {});
    for (auto& message : m_overlay.take_outbox()) messages.push_back(std::move(message));
    for (auto& message : messages) {
      Address to = 0;
      const auto& addr = message.to_addr;
      const auto [end, ec] = std::from_chars(addr.data(), addr.data() + addr.size(), to);
      if (ec != std::errc{} || end != addr.data() + addr.size()) continue;  // not an address of this network
      out.push_back({to, ChordEnvelope{m_overlay.ring().self(), std::move(message.message)}});
    }
    return out;
  }

  [[nodiscard]] const chord::Ring& ring() const { return m_overlay.ring(); }
  [[nodiscard]] chord::Overlay& overlay() { return m_overlay; }

 private:
  static NodeId ensure_id(ChordDurable& durable, Rng& rng) {
    if (!durable.id) durable.id = random_node_id(rng);
    return *durable.id;
  }
  chord::Overlay m_overlay;
  std::vector<chord::Outgoing> m_replies;
};

}  // namespace p2pd::sim
