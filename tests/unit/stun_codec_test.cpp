#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "daemon/nat/stun_codec.hpp"

using namespace p2pd;
using namespace p2pd::nat;

namespace {

// RFC 5769 §2: the test vectors, byte for byte.
const std::vector<std::uint8_t> kSampleRequest = {
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
    0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
    0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f,
    0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
    0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
    0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf};

const std::vector<std::uint8_t> kSampleIpv4Response = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
    0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96};

const std::vector<std::uint8_t> kSampleIpv6Response = {
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf,
    0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20,
    0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe,
    0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c,
    0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c};

const TransactionId kVectorTransaction = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};
constexpr std::string_view kRequestPassword = "VOkJxbRl1RmTxUk/WvJxBt";   // RFC 5769 §2.1
constexpr std::string_view kResponsePassword = "VOkJxbRl1RmTxUk/WvJxBt";  // §2.2, §2.3: the same

std::vector<std::uint8_t> bytes_of(const std::string& s) {
  return {s.begin(), s.end()};
}

}  // namespace

TEST_CASE("RFC 5769 sample request decodes, its FINGERPRINT and MESSAGE-INTEGRITY check", "[unit][stun]") {
  auto message = decode_stun(kSampleRequest);
  REQUIRE(message);
  CHECK(message->klass == StunClass::request);
  CHECK(message->method == kStunMethodBinding);
  CHECK(message->transaction == kVectorTransaction);
  CHECK(message->software == "STUN test client");
  CHECK(message->has_fingerprint);
  CHECK(message->has_message_integrity);
  CHECK(message->unknown_required_attribute == 0x0024);  // PRIORITY (ICE), which a Binding client ignores
  CHECK(message_integrity_matches(kSampleRequest, kRequestPassword));
  CHECK_FALSE(message_integrity_matches(kSampleRequest, "wrong password"));
}

TEST_CASE("RFC 5769 sample IPv4 response gives 192.0.2.1:32853", "[unit][stun]") {
  auto message = decode_stun(kSampleIpv4Response);
  REQUIRE(message);
  CHECK(message->klass == StunClass::success);
  CHECK(message->transaction == kVectorTransaction);
  CHECK(message->software == "test vector");
  CHECK(message->has_fingerprint);
  REQUIRE(message->reflexive_address());
  CHECK(*message->reflexive_address() == HostPort{"192.0.2.1", 32853});
  CHECK(message_integrity_matches(kSampleIpv4Response, kResponsePassword));
}

TEST_CASE("RFC 5769 sample IPv6 response gives [2001:db8:1234:5678:11:2233:4455:6677]:32853", "[unit][stun]") {
  auto message = decode_stun(kSampleIpv6Response);
  REQUIRE(message);
  REQUIRE(message->xor_mapped_address);
  CHECK(*message->xor_mapped_address == HostPort{"2001:db8:1234:5678:11:2233:4455:6677", 32853});
  CHECK(message->has_fingerprint);
  CHECK(message_integrity_matches(kSampleIpv6Response, kResponsePassword));
}

TEST_CASE("a Binding request and response round-trip", "[unit][stun]") {
  const TransactionId id = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  auto request = decode_stun(bytes_of(encode_binding_request(id, "p2pd test")));
  REQUIRE(request);
  CHECK(request->klass == StunClass::request);
  CHECK(request->transaction == id);
  CHECK(request->software == "p2pd test");
  CHECK(request->has_fingerprint);
  for (const HostPort& mapped : {HostPort{"203.0.113.7", 40001}, HostPort{"2001:db8::5", 7420}}) {
    auto response = decode_stun(bytes_of(encode_binding_success(id, mapped)));
    REQUIRE(response);
    CHECK(response->klass == StunClass::success);
    CHECK(response->xor_mapped_address == mapped);
  }
}

TEST_CASE("malformed STUN datagrams are rejected, not believed", "[unit][stun]") {
  const auto good = kSampleIpv4Response;
  auto mutate = [&](auto&& change) {
    auto bytes = good;
    change(bytes);
    return decode_stun(bytes);
  };
  CHECK_FALSE(decode_stun(std::vector<std::uint8_t>{}));
  CHECK_FALSE(decode_stun(std::vector<std::uint8_t>(19, 0)));
  CHECK_FALSE(decode_stun(std::vector<std::uint8_t>(4000, 0)));
  // Each single-byte change breaks the FINGERPRINT, but one: a change of
  // the FINGERPRINT's own type makes it an unknown optional attribute, and
  // the message one without a FINGERPRINT (which RFC 8489 allows).
  const std::size_t fingerprint_at = good.size() - 8;
  for (std::size_t i = 0; i < good.size(); ++i) {
    CAPTURE(i);
    auto changed = mutate([&](auto& b) { b[i] ^= 0x40; });
    if (i == fingerprint_at || i == fingerprint_at + 1) {
      REQUIRE(changed);
      CHECK_FALSE(changed->has_fingerprint);
    } else {
      CHECK_FALSE(changed);
    }
  }
  CHECK_FALSE(mutate([](auto& b) { b.pop_back(); }));    // truncated
  CHECK_FALSE(mutate([](auto& b) { b.push_back(0); }));  // trailing byte
  CHECK_FALSE(mutate([](auto& b) {                       // an attribute after FINGERPRINT, the length counting it
    b.insert(b.end(), {0x80, 0x22, 0, 0});
    b[3] = static_cast<std::uint8_t>(b[3] + 4);
  }));
  CHECK_FALSE(mutate([](auto& b) { b[3] = 0x3d; }));   // length not a multiple of 4
  CHECK_FALSE(mutate([](auto& b) { b[0] |= 0x80; }));  // top bits set
  // An attribute whose length runs past the end, with no FINGERPRINT to
  // catch it first.
  std::string header = encode_binding_request(kVectorTransaction);
  header.resize(kStunHeaderBytes);
  header[3] = 8;
  std::string overrun = header + std::string("\x00\x20\x00\x20\x00\x01\xa1\x47", 8);
  CHECK_FALSE(decode_stun(bytes_of(overrun)));
  // An address of an unknown family.
  std::string bad_family = header + std::string("\x00\x20\x00\x04\x00\x07\xa1\x47", 8);
  CHECK_FALSE(decode_stun(bytes_of(bad_family)));
  // An IPv4 address attribute that is too short.
  header[3] = 8;
  std::string short_v4 = header + std::string("\x00\x20\x00\x04\x00\x01\xa1\x47", 8);
  CHECK_FALSE(decode_stun(bytes_of(short_v4)));
}
