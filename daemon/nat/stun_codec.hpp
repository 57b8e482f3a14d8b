#pragma once
// STUN messages (RFC 8489 §5, §14): what a Binding client needs. Decoding is
// the boundary with the network, so it checks everything the RFC lets a
// receiver check (header bits, magic cookie, lengths, attribute bounds and
// order, FINGERPRINT) and turns any malformed datagram into an error: the
// caller drops it (§6.3).

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/host_port.hpp"
#include "common/result.hpp"

namespace p2pd::nat {

inline constexpr std::uint32_t kStunMagicCookie = 0x2112A442;  // §5
inline constexpr std::size_t kStunHeaderBytes = 20;
// A Binding response is well under this; anything longer is not one (and
// a UDP datagram on the Internet stays below 1500 bytes, §6.1).
inline constexpr std::size_t kMaxStunMessageBytes = 1280;

inline constexpr std::uint16_t kStunMethodBinding = 0x001;

// Attribute types this codec reads or writes (§18.3).
inline constexpr std::uint16_t kAttrMappedAddress = 0x0001;
inline constexpr std::uint16_t kAttrUsername = 0x0006;
inline constexpr std::uint16_t kAttrMessageIntegrity = 0x0008;
inline constexpr std::uint16_t kAttrErrorCode = 0x0009;
inline constexpr std::uint16_t kAttrUnknownAttributes = 0x000A;
inline constexpr std::uint16_t kAttrMessageIntegritySha256 = 0x001C;
inline constexpr std::uint16_t kAttrXorMappedAddress = 0x0020;
inline constexpr std::uint16_t kAttrSoftware = 0x8022;
inline constexpr std::uint16_t kAttrFingerprint = 0x8028;

enum class StunClass : std::uint8_t { request = 0, indication = 1, success = 2, error = 3 };

using TransactionId = std::array<std::uint8_t, 12>;

struct StunMessage {
  std::uint16_t method = kStunMethodBinding;
  StunClass klass = StunClass::request;
  TransactionId transaction{};
  std::optional<HostPort> xor_mapped_address;
  std::optional<HostPort> mapped_address;   // RFC 3489 servers send only this
  std::optional<std::uint16_t> error_code;  // 300..699 (§14.8)
  std::string error_reason;
  std::string software;
  bool has_message_integrity = false;
  bool has_fingerprint = false;  // present, and it matched
  // Comprehension-required attributes this codec does not know (§6.3.3: a
  // response carrying one is discarded).
  std::uint16_t unknown_required_attribute = 0;

  // The address the server saw the request come from: XOR-MAPPED-ADDRESS,
  // else MAPPED-ADDRESS.
  [[nodiscard]] std::optional<HostPort> reflexive_address() const;
};

// A Binding request with a FINGERPRINT (§14.7), and SOFTWARE when given.
std::string encode_binding_request(const TransactionId& transaction, std::string_view software = {});

// A Binding success response carrying XOR-MAPPED-ADDRESS and FINGERPRINT:
// what a STUN server answers (used by tests and by the fuzz corpus).
std::string encode_binding_success(const TransactionId& transaction, const HostPort& mapped);

// Parses and validates one datagram. A FINGERPRINT that does not match, an
// attribute running past the end or in the wrong place, a bad address
// family: all errors (ErrorCode::corrupt).
Result<StunMessage> decode_stun(std::span<const std::uint8_t> datagram);

// True when `datagram` carries a MESSAGE-INTEGRITY (HMAC-SHA1, §14.5) that
// matches `key` (for short-term credentials, the password). For RFC 5769's
// test vectors; p2pd's Binding requests to public servers use no credentials.
bool message_integrity_matches(std::span<const std::uint8_t> datagram, std::string_view key);

}  // namespace p2pd::nat
