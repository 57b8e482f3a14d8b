#pragma once
// Logical clocks for causal traces (DESIGN.md, "Causal traces"): every peer
// message carries the sender's Lamport clock and hybrid logical clock, and a
// message that belongs to a job also carries the job's vector clock. Pure
// values: no I/O, no wall clock of their own (the HLC is given one).

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace p2pd::clocks {

// Lamport, "Time, Clocks, and the Ordering of Events in a Distributed
// System" (1978), section 2: IR1, each event ticks the clock; IR2, a
// receive first advances it past the message's timestamp. Then a -> b
// implies C(a) < C(b).
class LamportClock {
 public:
  // A local or send event; its timestamp.
  std::uint64_t tick() { return ++m_time; }
  // The receive of a message stamped `remote`; the receive's timestamp. A
  // stamp past kMaxTime is not followed: no honest pool gets there, and a
  // peer must not be able to wrap this node's clock around.
  std::uint64_t receive(std::uint64_t remote) {
    m_time = std::max(m_time, remote <= kMaxTime ? remote : 0) + 1;
    return m_time;
  }
  static constexpr std::uint64_t kMaxTime = std::uint64_t{1} << 62;
  [[nodiscard]] std::uint64_t now() const { return m_time; }

 private:
  std::uint64_t m_time = 0;
};

enum class CausalOrder { equal, before, after, concurrent };

// A vector clock (Fidge 1988; Mattern 1989), sparse: a node absent from it
// counts 0. Keys are node ids in hex. a -> b iff V(a) < V(b), and two events
// are concurrent iff neither vector is <= the other.
class VectorClock {
 public:
  // At most this many nodes on the wire: a job's participants, not the pool.
  static constexpr std::size_t kMaxEntries = 256;

  // A local or send event of `node`.
  void tick(std::string_view node);
  // Pointwise maximum (the receive rule, before the receiver's tick).
  void merge(const VectorClock& other);
  [[nodiscard]] std::uint64_t get(std::string_view node) const;
  void set(std::string_view node, std::uint64_t value);
  [[nodiscard]] CausalOrder compare(const VectorClock& other) const;
  // Pointwise <=: this event happened before `other` or is it.
  [[nodiscard]] bool le(const VectorClock& other) const {
    const auto order = compare(other);
    return order == CausalOrder::before || order == CausalOrder::equal;
  }
  [[nodiscard]] const std::map<std::string, std::uint64_t, std::less<>>& entries() const { return m_entries; }
  [[nodiscard]] bool empty() const { return m_entries.empty(); }
  bool operator==(const VectorClock&) const = default;

 private:
  std::map<std::string, std::uint64_t, std::less<>> m_entries;  // no zero values
};

// A hybrid logical clock timestamp: `l` is the largest physical time (ms
// since the Unix epoch) heard of, `c` counts events within the same `l`.
struct HlcTimestamp {
  std::uint64_t l = 0;
  std::uint32_t c = 0;
  auto operator<=>(const HlcTimestamp&) const = default;
};

// Kulkarni, Demirbas, Madeppa, Avva, Leone, "Logical Physical Clocks"
// (OPODIS 2014), figure 5. Monotonic and causal like a Lamport clock, yet
// within the clock offset of physical time, so merged traces read in wall
// time. A physical clock that jumps backwards does not move it back (c
// counts on until physical time catches up). A peer whose timestamp is more
// than `max_offset_ms` ahead of this node's physical time is not followed:
// one bad clock must not drag the whole pool's clocks into the future
// (CockroachDB's rule); the receive is then stamped from this node's own
// clock, still after everything it sent or saw before.
class HybridClock {
 public:
  using PhysicalClock = std::function<std::uint64_t()>;  // ms since the Unix epoch
  HybridClock(PhysicalClock physical, std::uint64_t max_offset_ms)
      : m_physical(std::move(physical)), m_max_offset_ms(max_offset_ms) {}

  // A local or send event.
  HlcTimestamp now();
  // The receive of a message stamped `remote`; `followed` says whether the
  // remote timestamp was taken into account (false: it was too far ahead).
  struct Received {
    HlcTimestamp time;
    bool followed = true;
  };
  Received receive(HlcTimestamp remote);
  [[nodiscard]] HlcTimestamp last() const { return m_last; }

 private:
  PhysicalClock m_physical;
  std::uint64_t m_max_offset_ms;
  HlcTimestamp m_last;
};

}  // namespace p2pd::clocks
