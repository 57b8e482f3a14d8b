#pragma once
// The relay's wire format (TURN over TCP, RFC 6062, reduced to what a pool
// needs). A reachable peer R gives an unreachable peer A an allocation: a
// TCP port on R that peers call as if it were A. On that port:
//   A's control connection: "P2PDCTL1" + the 16-byte secret from Reserve,
//     then frames both ways: 'K' (keepalive) from either side, and from R
//     'C' + a 16-byte token for each caller waiting.
//   A's leg for a caller: "P2PDLEG1" + the token; R then joins it to the
//     caller, byte for byte, and A serves gRPC on it.
//   A caller: anything else (gRPC's HTTP/2 preface); its first bytes are
//     kept and forwarded on the leg.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace p2pd::relay {

inline constexpr std::size_t kMagicBytes = 8;
inline constexpr std::string_view kControlMagic = "P2PDCTL1";
inline constexpr std::string_view kLegMagic = "P2PDLEG1";
inline constexpr std::size_t kSecretBytes = 16;
using Secret = std::array<std::uint8_t, kSecretBytes>;

inline constexpr std::uint8_t kFrameKeepalive = 'K';
inline constexpr std::uint8_t kFrameCaller = 'C';

// Each side sends a keepalive this often and drops the control connection
// after kControlSilence without one.
inline constexpr std::chrono::seconds kKeepaliveInterval{10};
inline constexpr std::chrono::seconds kControlSilence{35};
// A connection must say what it is, and a caller's leg must arrive, within this.
inline constexpr std::chrono::seconds kHandshakeTimeout{10};
// An allocation whose control connection is gone is kept this long for A to
// come back (same port, so peers' records of A stay right).
inline constexpr std::chrono::seconds kAllocationGrace{120};

}  // namespace p2pd::relay
