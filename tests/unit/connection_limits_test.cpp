// The peer port's connection caps: per address and in all, a connection
// counted from its admission until its end is reported.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "daemon/net/connection_limits.hpp"
#include "daemon/net/peer_listener.hpp"

using namespace p2pd::net;
using Verdict = ConnectionLimits::Verdict;

TEST_CASE("connection limits: an address is capped, others are not", "[unit][net]") {
  ConnectionLimits limits(ConnectionCaps{3, 100});
  std::vector<ConnectionId> from_one;
  for (int i = 0; i < 3; ++i) {
    const auto admission = limits.admit("10.0.0.1");
    REQUIRE(admission.verdict == Verdict::admitted);
    from_one.push_back(admission.id);
  }
  CHECK(std::set<ConnectionId>(from_one.begin(), from_one.end()).size() == 3);  // each its own id
  CHECK(limits.admit("10.0.0.1").verdict == Verdict::too_many_from_address);
  const auto other = limits.admit("10.0.0.2");
  CHECK(other.verdict == Verdict::admitted);
  CHECK(limits.tracked() == 4);
  CHECK(limits.connections_of("10.0.0.1") == from_one);
  CHECK(limits.connections_of("10.0.0.2") == std::vector<ConnectionId>{other.id});
  CHECK(limits.connections_of("10.0.0.3").empty());
  // One of the three ends: room for one more from that address, and a new id.
  CHECK(limits.forget(from_one[1]));
  CHECK_FALSE(limits.forget(from_one[1]));  // reported twice: counted once
  const auto again = limits.admit("10.0.0.1");
  CHECK(again.verdict == Verdict::admitted);
  CHECK(std::find(from_one.begin(), from_one.end(), again.id) == from_one.end());
  CHECK(limits.admit("10.0.0.1").verdict == Verdict::too_many_from_address);
  CHECK(limits.connections_of("10.0.0.1") == std::vector<ConnectionId>{from_one[0], from_one[2], again.id});
  CHECK(limits.tracked() == 4);
  CHECK_FALSE(limits.forget(999'999));  // never admitted
  CHECK(limits.tracked() == 4);
}

TEST_CASE("connection limits: the total is capped, and an end anywhere makes room", "[unit][net]") {
  ConnectionLimits limits(ConnectionCaps{2, 6});
  std::vector<ConnectionId> held;
  for (int host = 0; host < 3; ++host) {
    for (int i = 0; i < 2; ++i) {
      const auto admission = limits.admit("10.0.0." + std::to_string(host));
      REQUIRE(admission.verdict == Verdict::admitted);
      held.push_back(admission.id);
    }
  }
  CHECK(limits.admit("10.0.1.1").verdict == Verdict::too_many);
  CHECK(limits.tracked() == 6);
  // All of one address's connections end: its entry goes, room is made.
  CHECK(limits.forget(held[0]));
  CHECK(limits.forget(held[1]));
  CHECK(limits.connections_of("10.0.0.0").empty());
  CHECK(limits.tracked() == 4);
  CHECK(limits.admit("10.0.1.1").verdict == Verdict::admitted);
  CHECK(limits.tracked() == 5);
  CHECK(limits.admit("10.0.1.2").verdict == Verdict::admitted);
  // Addresses that keep trying are refused without growing the table.
  for (int i = 0; i < 1000; ++i) {
    CHECK(limits.admit("10.0.1.1").verdict == Verdict::too_many);
    CHECK(limits.admit("10.0.2." + std::to_string(i)).verdict == Verdict::too_many);
  }
  CHECK(limits.connections_of("10.0.2.1").empty());
  CHECK(limits.tracked() == 6);
  // Every end reported: nothing is left, whatever the order.
  for (const ConnectionId id : held) limits.forget(id);
  for (const auto& address : {"10.0.1.1", "10.0.1.2"}) {
    for (const ConnectionId id : limits.connections_of(address)) CHECK(limits.forget(id));
  }
  CHECK(limits.tracked() == 0);
  CHECK(peer_ip(-1).empty());
}

TEST_CASE("connection limits: IPv6 callers are counted by their /64", "[unit][net]") {
  CHECK(address_key("203.0.113.9") == "203.0.113.9");
  CHECK(address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64");
  CHECK(address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9"));
  CHECK(address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1"));
  CHECK(address_key("::ffff:192.0.2.7") == "192.0.2.7");
  CHECK(address_key("::1") == "::/64");
}
