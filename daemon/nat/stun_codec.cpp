#include "daemon/nat/stun_codec.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstring>

#include "common/byte_codec.hpp"

namespace p2pd::nat {
namespace {

constexpr std::uint32_t kFingerprintXor = 0x5354554e;  // §14.7: "STUN"
constexpr std::size_t kHmacSha1Bytes = 20;

std::uint16_t be16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
void put_be16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xFF));
}
void put_be32(std::string& out, std::uint32_t v) {
  put_be16(out, static_cast<std::uint16_t>(v >> 16));
  put_be16(out, static_cast<std::uint16_t>(v & 0xFFFF));
}
void set_be16(std::string& out, std::size_t at, std::uint16_t v) {
  out[at] = static_cast<char>(v >> 8);
  out[at + 1] = static_cast<char>(v & 0xFF);
}

// §5: the class bits C1 C0 sit at bits 8 and 4 of the type, between the
// method's bits M11..M7, M6..M4 and M3..M0.
std::uint16_t message_type(std::uint16_t method, StunClass klass) {
  const auto c = static_cast<std::uint16_t>(klass);
  return static_cast<std::uint16_t>((method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) |
                                    ((c & 1) << 4) | ((c & 2) << 7));
}

bool comprehension_required_and_known(std::uint16_t type) {
  switch (type) {
    case kAttrMappedAddress:
    case kAttrUsername:
    case kAttrMessageIntegrity:
    case kAttrErrorCode:
    case kAttrUnknownAttributes:
    case 0x0014:  // REALM
    case 0x0015:  // NONCE
    case kAttrMessageIntegritySha256:
    case 0x001D:  // PASSWORD-ALGORITHM
    case 0x001E:  // USERHASH
    case kAttrXorMappedAddress: return true;
    default: return false;
  }
}

// MAPPED-ADDRESS and XOR-MAPPED-ADDRESS (§14.1, §14.2). For the XOR form,
// the port is XORed with the cookie's high half and the address with the
// cookie (IPv4) or the cookie and the transaction id (IPv6).
Result<HostPort> decode_address(const std::uint8_t* value, std::size_t length, bool xored, const std::uint8_t* header) {
  if (length < 4) return make_error(ErrorCode::corrupt, "address attribute of {} bytes", length);
  const std::uint8_t family = value[1];
  std::uint16_t port = be16(value + 2);
  if (xored) port ^= static_cast<std::uint16_t>(kStunMagicCookie >> 16);
  char text[INET6_ADDRSTRLEN] = {};
  if (family == 0x01) {
    if (length != 8) return make_error(ErrorCode::corrupt, "IPv4 address attribute of {} bytes", length);
    std::uint8_t address[4];
    for (int i = 0; i < 4; ++i) address[i] = static_cast<std::uint8_t>(value[4 + i] ^ (xored ? header[4 + i] : 0));
    ::inet_ntop(AF_INET, address, text, sizeof text);
  } else if (family == 0x02) {
    if (length != 20) return make_error(ErrorCode::corrupt, "IPv6 address attribute of {} bytes", length);
    std::uint8_t address[16];
    // header + 4: the cookie, then the 12-byte transaction id.
    for (int i = 0; i < 16; ++i) address[i] = static_cast<std::uint8_t>(value[4 + i] ^ (xored ? header[4 + i] : 0));
    ::inet_ntop(AF_INET6, address, text, sizeof text);
  } else {
    return make_error(ErrorCode::corrupt, "address family {}", family);
  }
  if (port == 0) return make_error(ErrorCode::corrupt, "mapped port 0");
  return HostPort{text, port};
}

void put_attribute(std::string& out, std::uint16_t type, std::string_view value) {
  put_be16(out, type);
  put_be16(out, static_cast<std::uint16_t>(value.size()));
  out.append(value);
  while (out.size() % 4 != 0) out.push_back('\0');
}

std::string header(std::uint16_t type, const TransactionId& transaction) {
  std::string out;
  put_be16(out, type);
  put_be16(out, 0);  // length, set when the attributes are in
  put_be32(out, kStunMagicCookie);
  out.append(reinterpret_cast<const char*>(transaction.data()), transaction.size());
  return out;
}

void append_fingerprint(std::string& out) {
  // The length must already count the FINGERPRINT attribute (8 bytes).
  set_be16(out, 2, static_cast<std::uint16_t>(out.size() + 8 - kStunHeaderBytes));
  const std::uint32_t crc = crc32_of(out.data(), out.size()) ^ kFingerprintXor;
  std::string value;
  put_be32(value, crc);
  put_attribute(out, kAttrFingerprint, value);
}

}  // namespace

std::optional<HostPort> StunMessage::reflexive_address() const {
  return xor_mapped_address ? xor_mapped_address : mapped_address;
}

std::string encode_binding_request(const TransactionId& transaction, std::string_view software) {
  std::string out = header(message_type(kStunMethodBinding, StunClass::request), transaction);
  if (!software.empty()) put_attribute(out, kAttrSoftware, software.substr(0, 127));
  append_fingerprint(out);
  return out;
}

std::string encode_binding_success(const TransactionId& transaction, const HostPort& mapped) {
  std::string out = header(message_type(kStunMethodBinding, StunClass::success), transaction);
  std::string value;
  value.push_back('\0');
  const auto port = static_cast<std::uint16_t>(mapped.port ^ (kStunMagicCookie >> 16));
  std::uint8_t address[16];
  if (::inet_pton(AF_INET, mapped.host.c_str(), address) == 1) {
    value.push_back('\x01');
    put_be16(value, port);
    for (int i = 0; i < 4; ++i) value.push_back(static_cast<char>(address[i] ^ static_cast<std::uint8_t>(out[4 + i])));
  } else if (::inet_pton(AF_INET6, mapped.host.c_str(), address) == 1) {
    value.push_back('\x02');
    put_be16(value, port);
    for (int i = 0; i < 16; ++i) value.push_back(static_cast<char>(address[i] ^ static_cast<std::uint8_t>(out[4 + i])));
  }
  if (value.size() > 1) put_attribute(out, kAttrXorMappedAddress, value);
  append_fingerprint(out);
  return out;
}

Result<StunMessage> decode_stun(std::span<const std::uint8_t> datagram) {
  const std::uint8_t* p = datagram.data();
  const std::size_t size = datagram.size();
  if (size < kStunHeaderBytes) return make_error(ErrorCode::corrupt, "{} bytes: shorter than a STUN header", size);
  if (size > kMaxStunMessageBytes) return make_error(ErrorCode::corrupt, "{} bytes: too long for STUN", size);
  // §6.3: the two top bits are zero, the cookie is right, the length is a
  // multiple of 4 and matches the datagram.
  const std::uint16_t type = be16(p);
  if ((type & 0xC000) != 0) return make_error(ErrorCode::corrupt, "not STUN (top bits of the type set)");
  if (be32(p + 4) != kStunMagicCookie) return make_error(ErrorCode::corrupt, "not STUN (no magic cookie)");
  const std::size_t length = be16(p + 2);
  if (length % 4 != 0) return make_error(ErrorCode::corrupt, "message length {} not a multiple of 4", length);
  if (length + kStunHeaderBytes != size)
    return make_error(ErrorCode::corrupt, "message length {} but {} bytes after the header", length,
                      size - kStunHeaderBytes);

  StunMessage message;
  message.method = static_cast<std::uint16_t>((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
  message.klass = static_cast<StunClass>(((type >> 4) & 1) | ((type >> 7) & 2));
  std::copy(p + 8, p + 20, message.transaction.begin());

  bool after_integrity = false;
  std::size_t at = kStunHeaderBytes;
  while (at < size) {
    if (size - at < 4) return make_error(ErrorCode::corrupt, "truncated attribute header at byte {}", at);
    const std::uint16_t attribute = be16(p + at);
    const std::size_t value_length = be16(p + at + 2);
    const std::size_t padded = (value_length + 3) & ~std::size_t{3};
    if (padded > size - at - 4)
      return make_error(ErrorCode::corrupt, "attribute 0x{:04x} of {} bytes runs past the end", attribute,
                        value_length);
    const std::uint8_t* value = p + at + 4;
    if (message.has_fingerprint)
      return make_error(ErrorCode::corrupt, "attribute 0x{:04x} after FINGERPRINT", attribute);

    if (attribute == kAttrFingerprint) {
      // §14.7: the CRC of everything before it, the length already counting it.
      if (value_length != 4) return make_error(ErrorCode::corrupt, "FINGERPRINT of {} bytes", value_length);
      const std::uint32_t expected = crc32_of(reinterpret_cast<const char*>(p), at) ^ kFingerprintXor;
      if (be32(value) != expected) return make_error(ErrorCode::corrupt, "FINGERPRINT does not match");
      message.has_fingerprint = true;
    } else if (after_integrity && attribute != kAttrMessageIntegritySha256) {
      // §14.5: everything after MESSAGE-INTEGRITY but these is ignored.
    } else if (attribute == kAttrMessageIntegrity) {
      if (value_length != kHmacSha1Bytes)
        return make_error(ErrorCode::corrupt, "MESSAGE-INTEGRITY of {} bytes", value_length);
      message.has_message_integrity = true;
      after_integrity = true;
    } else if (attribute == kAttrXorMappedAddress || attribute == kAttrMappedAddress) {
      auto address = decode_address(value, value_length, attribute == kAttrXorMappedAddress, p);
      if (!address) return address.error();
      (attribute == kAttrXorMappedAddress ? message.xor_mapped_address : message.mapped_address) = *address;
    } else if (attribute == kAttrErrorCode) {
      // §14.8: 21 reserved bits, a class (3..6) and a number (0..99), a reason.
      if (value_length < 4) return make_error(ErrorCode::corrupt, "ERROR-CODE of {} bytes", value_length);
      const int klass = value[2] & 0x07;
      const int number = value[3];
      if (klass < 3 || klass > 6 || number > 99)
        return make_error(ErrorCode::corrupt, "ERROR-CODE {}{:02}", klass, number);
      message.error_code = static_cast<std::uint16_t>(klass * 100 + number);
      message.error_reason.assign(reinterpret_cast<const char*>(value + 4), value_length - 4);
    } else if (attribute == kAttrSoftware) {
      message.software.assign(reinterpret_cast<const char*>(value), value_length);
    } else if (attribute < 0x8000 && !comprehension_required_and_known(attribute) &&
               message.unknown_required_attribute == 0) {
      message.unknown_required_attribute = attribute;
    }
    at += 4 + padded;
  }
  return message;
}

bool message_integrity_matches(std::span<const std::uint8_t> datagram, std::string_view key) {
  if (!decode_stun(datagram)) return false;
  const std::uint8_t* p = datagram.data();
  std::size_t at = kStunHeaderBytes;
  while (at + 4 <= datagram.size()) {
    const std::uint16_t attribute = be16(p + at);
    const std::size_t value_length = be16(p + at + 2);
    if (attribute == kAttrMessageIntegrity) {
      // §14.5: the HMAC covers the message before the attribute, with the
      // header's length counting up to the end of MESSAGE-INTEGRITY.
      std::string covered(reinterpret_cast<const char*>(p), at);
      set_be16(covered, 2, static_cast<std::uint16_t>(at + 4 + kHmacSha1Bytes - kStunHeaderBytes));
      unsigned char mac[EVP_MAX_MD_SIZE];
      unsigned int mac_length = 0;
      if (HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()),
               reinterpret_cast<const unsigned char*>(covered.data()), covered.size(), mac, &mac_length) == nullptr ||
          mac_length != kHmacSha1Bytes) {
        return false;
      }
      return std::memcmp(mac, p + at + 4, kHmacSha1Bytes) == 0;
    }
    at += 4 + ((value_length + 3) & ~std::size_t{3});
  }
  return false;
}

}  // namespace p2pd::nat
