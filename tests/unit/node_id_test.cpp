#include <catch2/catch.hpp>

#include "common/hex.hpp"
#include "common/node_id.hpp"

using p2pd::NodeId;

namespace {
NodeId id(std::string_view hex) {
  return *NodeId::from_hex(hex);
}
const std::string kZero(40, '0');
}  // namespace

TEST_CASE("node ids parse exactly 40 hex digits", "[unit][node_id]") {
  CHECK(NodeId::from_hex(kZero));
  CHECK(NodeId::from_hex("ABCDEF0123456789abcdef0123456789ABCDEF01")->hex() ==
        "abcdef0123456789abcdef0123456789abcdef01");
  CHECK_FALSE(NodeId::from_hex(""));
  CHECK_FALSE(NodeId::from_hex(std::string(39, 'a')));
  CHECK_FALSE(NodeId::from_hex(std::string(41, 'a')));
  CHECK_FALSE(NodeId::from_hex(std::string(39, 'a') + "g"));
  CHECK_FALSE(NodeId::from_bytes(std::vector<std::uint8_t>(19)));
  CHECK(NodeId::from_bytes(std::vector<std::uint8_t>(20)));
}

TEST_CASE("key ids are SHA-1 (RFC 3174 test vector)", "[unit][node_id]") {
  CHECK(NodeId::hash_of(std::string_view("abc")).hex() == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(NodeId::hash_of(std::string_view("")).hex() == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

TEST_CASE("finger starts: n + 2^i mod 2^160", "[unit][node_id]") {
  const NodeId zero = id(kZero);
  CHECK(zero.plus_power_of_two(0).hex() == std::string(39, '0') + "1");
  CHECK(zero.plus_power_of_two(8).hex() == std::string(36, '0') + "0100");
  CHECK(zero.plus_power_of_two(159).hex() == "8" + std::string(39, '0'));
  CHECK(zero.plus_power_of_two(160) == zero);  // 2^160 wraps to 0
  // Carries ripple and the top wraps around.
  const NodeId all_ones = id(std::string(40, 'f'));
  CHECK(all_ones.plus_power_of_two(0) == zero);
  CHECK(id(std::string(38, '0') + "ff").plus_power_of_two(0).hex() == std::string(37, '0') + "100");
}

TEST_CASE("clockwise distance wraps around the ring", "[unit][node_id]") {
  const NodeId a = id(std::string(39, '0') + "5");
  const NodeId b = id(std::string(39, '0') + "9");
  CHECK(a.distance_to(b).hex() == std::string(39, '0') + "4");
  CHECK(b.distance_to(a).hex() == std::string(39, 'f') + "c");  // 2^160 - 4
  CHECK(a.distance_to(a) == id(kZero));
}

TEST_CASE("ring intervals follow Chord's conventions", "[unit][node_id]") {
  const NodeId n10 = id(std::string(38, '0') + "10");
  const NodeId n20 = id(std::string(38, '0') + "20");
  const NodeId n15 = id(std::string(38, '0') + "15");
  const NodeId n30 = id(std::string(38, '0') + "30");
  SECTION("no wrap") {
    CHECK(p2pd::in_open_interval(n15, n10, n20));
    CHECK_FALSE(p2pd::in_open_interval(n10, n10, n20));
    CHECK_FALSE(p2pd::in_open_interval(n20, n10, n20));
    CHECK(p2pd::in_half_open_interval(n20, n10, n20));
    CHECK_FALSE(p2pd::in_half_open_interval(n30, n10, n20));
  }
  SECTION("wrapping past zero") {
    CHECK(p2pd::in_open_interval(n10, n30, n20));
    CHECK(p2pd::in_open_interval(id(kZero), n30, n10));
    CHECK_FALSE(p2pd::in_open_interval(n20, n30, n10));
  }
  SECTION("from == to: the whole ring") {
    CHECK(p2pd::in_open_interval(n15, n10, n10));
    CHECK_FALSE(p2pd::in_open_interval(n10, n10, n10));
    CHECK(p2pd::in_half_open_interval(n10, n10, n10));
  }
}

TEST_CASE("hex round-trips and rejects junk", "[unit][hex]") {
  const std::vector<std::uint8_t> bytes = {0x00, 0x7f, 0x80, 0xff};
  CHECK(p2pd::to_hex(bytes) == "007f80ff");
  CHECK(*p2pd::from_hex("007F80ff") == bytes);
  CHECK_FALSE(p2pd::from_hex("abc"));
  CHECK_FALSE(p2pd::from_hex("zz"));
  CHECK(p2pd::from_hex("")->empty());
}
