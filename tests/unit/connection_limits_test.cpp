// The peer port's connection caps: per address and in all, with closed
// connections noticed only when a cap is reached.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "daemon/net/connection_limits.hpp"
#include "daemon/net/peer_listener.hpp"

using namespace p2pd::net;
using Verdict = ConnectionLimits::Verdict;
using namespace std::chrono_literals;

namespace {

const auto t0 = std::chrono::steady_clock::time_point{} + 1h;

// Connections are "open" while their inode is in the set.
struct FakeSockets {
  std::set<ino_t> open;
  ino_t next = 1;
  ConnectionLimits::Connection connect() {
    open.insert(next);
    return {static_cast<int>(next), next++};
  }
};

}  // namespace

TEST_CASE("connection limits: an address is capped, others are not", "[unit][net]") {
  FakeSockets sockets;
  std::size_t checks = 0;
  ConnectionLimits limits(ConnectionCaps{3, 100}, [&](const ConnectionLimits::Connection& c) {
    ++checks;
    return sockets.open.count(c.inode) > 0;
  });
  for (int i = 0; i < 3; ++i) CHECK(limits.admit("10.0.0.1", sockets.connect(), t0) == Verdict::admitted);
  CHECK(checks == 0);  // nothing is checked below the cap
  CHECK(limits.admit("10.0.0.1", sockets.connect(), t0) == Verdict::too_many_from_address);
  CHECK(checks == 3);
  CHECK(limits.admit("10.0.0.2", sockets.connect(), t0) == Verdict::admitted);
  CHECK(limits.tracked() == 4);
  // One of the three closes: room for one more from that address.
  sockets.open.erase(2);
  CHECK(limits.admit("10.0.0.1", sockets.connect(), t0) == Verdict::admitted);
  CHECK(limits.admit("10.0.0.1", sockets.connect(), t0) == Verdict::too_many_from_address);
  CHECK(limits.tracked() == 4);
}

TEST_CASE("connection limits: the total is capped, and closed connections anywhere make room", "[unit][net]") {
  FakeSockets sockets;
  ConnectionLimits limits(ConnectionCaps{2, 6},
                          [&](const ConnectionLimits::Connection& c) { return sockets.open.count(c.inode) > 0; });
  std::vector<ConnectionLimits::Connection> held;
  for (int host = 0; host < 3; ++host) {
    for (int i = 0; i < 2; ++i) {
      held.push_back(sockets.connect());
      CHECK(limits.admit("10.0.0." + std::to_string(host), held.back(), t0) == Verdict::admitted);
    }
  }
  CHECK(limits.admit("10.0.1.1", sockets.connect(), t0) == Verdict::too_many);
  CHECK(limits.tracked() == 6);
  // All of one address's connections close: its entry goes, room is made,
  // once a second has passed since the table was last checked.
  sockets.open.erase(held[0].inode);
  sockets.open.erase(held[1].inode);
  CHECK(limits.admit("10.0.1.1", sockets.connect(), t0 + 500ms) == Verdict::too_many);
  CHECK(limits.admit("10.0.1.1", sockets.connect(), t0 + 1s) == Verdict::admitted);
  CHECK(limits.tracked() == 5);
  // An address that keeps trying is refused without growing the table.
  for (int i = 0; i < 1000; ++i) {
    CHECK(limits.admit("10.0.1.1", sockets.connect(), t0 + 2s) != Verdict::too_many);
  }
  CHECK(limits.tracked() <= 6);
}

TEST_CASE("connection limits: a descriptor counts while it names the same socket", "[unit][net]") {
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
  struct stat st {};
  REQUIRE(::fstat(pair[0], &st) == 0);
  const ConnectionLimits::Connection connection{pair[0], st.st_ino};
  CHECK(descriptor_names_socket(connection));
  ::close(pair[0]);
  CHECK_FALSE(descriptor_names_socket(connection));
  // The number reused by another socket: not the same connection.
  int other[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, other) == 0);
  REQUIRE(::dup2(other[0], connection.fd) == connection.fd);
  CHECK_FALSE(descriptor_names_socket(connection));
  ::close(connection.fd);
  ::close(other[0]);
  ::close(other[1]);
  ::close(pair[1]);
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
