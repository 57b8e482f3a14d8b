#pragma once
// A blob's content address: the SHA-256 of its bytes (DESIGN.md
// daemon/store). SHA-256 rather than the ring's SHA-1, because a blob id is
// a promise about content that any peer may try to break, and SHA-1
// collisions can be made (SHAttered, 2017). The ring places a blob at the
// first 160 bits of its id.

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/node_id.hpp"

namespace p2pd::store {

class BlobId {
 public:
  static constexpr std::size_t kBytes = 32;
  static constexpr std::size_t kHexDigits = kBytes * 2;

  BlobId() = default;
  // The id of `data`.
  static BlobId of(std::span<const std::uint8_t> data);
  static BlobId of(std::string_view data);
  // Exactly kHexDigits hex digits (either case); nullopt otherwise.
  static std::optional<BlobId> from_hex(std::string_view text);
  // Exactly kBytes bytes; nullopt otherwise.
  static std::optional<BlobId> from_bytes(std::string_view bytes);

  [[nodiscard]] std::string hex() const;
  [[nodiscard]] std::string_view bytes() const {
    return {reinterpret_cast<const char*>(m_bytes.data()), m_bytes.size()};
  }
  // Where the ring keeps it: successor(ring_key()).
  [[nodiscard]] NodeId ring_key() const;

  friend auto operator<=>(const BlobId&, const BlobId&) = default;

 private:
  std::array<std::uint8_t, kBytes> m_bytes{};
};

}  // namespace p2pd::store
