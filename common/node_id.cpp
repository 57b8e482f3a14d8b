#include "common/node_id.hpp"

#include <algorithm>

#include <openssl/sha.h>

#include "common/hex.hpp"

namespace p2pd {

std::optional<NodeId> NodeId::from_hex(std::string_view text) {
  if (text.size() != kHexDigits) return std::nullopt;
  auto bytes = p2pd::from_hex(text);
  if (!bytes) return std::nullopt;
  return from_bytes(*bytes);
}

std::optional<NodeId> NodeId::from_bytes(std::span<const std::uint8_t> bytes) {
  if (bytes.size() != kBytes) return std::nullopt;
  Bytes out{};
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return NodeId(out);
}

NodeId NodeId::hash_of(std::span<const std::uint8_t> data) {
  static_assert(SHA_DIGEST_LENGTH == kBytes);
  Bytes out{};
  SHA1(data.data(), data.size(), out.data());
  return NodeId(out);
}

NodeId NodeId::hash_of(std::string_view data) {
  return hash_of(std::span(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
}

std::string NodeId::hex() const {
  return to_hex(m_bytes);
}

std::string NodeId::short_hex(std::size_t digits) const {
  return hex().substr(0, std::min(digits, kHexDigits));
}

NodeId NodeId::of_key(std::string_view key) {
  if (auto id = from_hex(key)) return *id;
  return hash_of(key);
}

NodeId NodeId::plus_power_of_two(std::size_t exponent) const {
  Bytes out = m_bytes;
  if (exponent >= kBits) return NodeId(out);  // 2^160 == 0 on the ring
  // Bit `exponent` counted from the least significant end of a big-endian number.
  std::size_t byte = kBytes - 1 - exponent / 8;
  unsigned carry = 1u << (exponent % 8);
  for (std::size_t i = byte + 1; i-- > 0 && carry != 0;) {
    unsigned sum = out[i] + carry;
    out[i] = static_cast<std::uint8_t>(sum & 0xff);
    carry = sum >> 8;
  }
  return NodeId(out);
}

NodeId NodeId::distance_to(const NodeId& to) const {
  Bytes out{};
  int borrow = 0;
  for (std::size_t i = kBytes; i-- > 0;) {
    int diff = int{to.m_bytes[i]} - int{m_bytes[i]} - borrow;
    borrow = diff < 0 ? 1 : 0;
    out[i] = static_cast<std::uint8_t>(diff + (borrow << 8));
  }
  return NodeId(out);
}

bool in_open_interval(const NodeId& x, const NodeId& from, const NodeId& to) {
  if (from < to) return from < x && x < to;
  if (to < from) return from < x || x < to;
  return x != from;
}

bool in_half_open_interval(const NodeId& x, const NodeId& from, const NodeId& to) {
  if (from == to) return true;
  return in_open_interval(x, from, to) || x == to;
}

}  // namespace p2pd
