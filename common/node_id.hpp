#pragma once
// 160-bit identifiers on the Chord ring (Stoica et al., "Chord", SIGCOMM 2001,
// §4.2): node ids are the SHA-1 of the node's public key, key ids the SHA-1 of
// the key. The ring is the integers mod 2^160, big-endian byte order.

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace p2pd {

class NodeId {
 public:
  static constexpr std::size_t kBytes = 20;
  static constexpr std::size_t kBits = kBytes * 8;
  static constexpr std::size_t kHexDigits = kBytes * 2;
  using Bytes = std::array<std::uint8_t, kBytes>;

  constexpr NodeId() = default;
  explicit constexpr NodeId(const Bytes& bytes) : m_bytes(bytes) {}

  // Exactly 40 hex digits (either case); nullopt otherwise.
  static std::optional<NodeId> from_hex(std::string_view text);
  // Exactly 20 bytes; nullopt otherwise (peer input is validated, never asserted).
  static std::optional<NodeId> from_bytes(std::span<const std::uint8_t> bytes);
  // SHA-1 of arbitrary bytes: the id of a key or of a public key.
  static NodeId hash_of(std::span<const std::uint8_t> data);
  static NodeId hash_of(std::string_view data);
  // The id of a user's key (CONTRACT.md, `lookup KEY`): exactly 40 hex
  // digits are the id itself; anything else is hashed.
  static NodeId of_key(std::string_view key);

  [[nodiscard]] const Bytes& bytes() const { return m_bytes; }
  [[nodiscard]] std::string hex() const;
  // The first `digits` hex digits, for logs.
  [[nodiscard]] std::string short_hex(std::size_t digits = 8) const;

  // (this + 2^exponent) mod 2^160: the start of finger `exponent` (Chord §4.3).
  [[nodiscard]] NodeId plus_power_of_two(std::size_t exponent) const;
  // (to - this) mod 2^160: clockwise distance.
  [[nodiscard]] NodeId distance_to(const NodeId& to) const;

  friend constexpr auto operator<=>(const NodeId&, const NodeId&) = default;

 private:
  Bytes m_bytes{};
};

// Ring intervals, clockwise from `from` to `to`. When from == to the open
// interval (a, a) is the whole ring except a, and (a, a] is the whole ring:
// the conventions Chord's pseudocode relies on for a single-node ring.
bool in_open_interval(const NodeId& x, const NodeId& from, const NodeId& to);
bool in_half_open_interval(const NodeId& x, const NodeId& from, const NodeId& to);  // (from, to]

}  // namespace p2pd
