// The peer port's connection caps: per address and in all, a connection
// counted from its admission until its end is reported.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "daemon/net/connection_limits.hpp"
#include "daemon/net/peer_listener.hpp"
#include "tests/support/loopback.hpp"

using namespace p2pd::net;
using Verdict = ConnectionLimits::Verdict;
using namespace std::chrono_literals;
using p2pd::test::closed_by_peer;
using p2pd::test::connect_tcp;

namespace {

// What the listener handed over, as its owner (the TLS layer) would keep it.
class Owner {
 public:
  PeerListener::HandOver hand_over() {
    return [this](int fd, const p2pd::HostPort& from, PeerListener::Admitted admitted) {
      std::lock_guard lock(m_mutex);
      m_handed.push_back(Handed{fd, from.host, std::move(admitted)});
      m_cv.notify_all();
    };
  }
  // Waits (5 s at most) until `count` connections were handed over.
  bool wait_for(std::size_t count) {
    std::unique_lock lock(m_mutex);
    return m_cv.wait_for(lock, 5s, [&] { return m_handed.size() >= count; });
  }
  std::size_t count() {
    std::lock_guard lock(m_mutex);
    return m_handed.size();
  }
  ConnectionId id(std::size_t i) {
    std::lock_guard lock(m_mutex);
    return m_handed.at(i).admitted.id;
  }
  std::string from(std::size_t i) {
    std::lock_guard lock(m_mutex);
    return m_handed.at(i).from;
  }
  // The connection ends: closed, and its end reported.
  void end(std::size_t i) {
    std::function<void()> ended;
    {
      std::lock_guard lock(m_mutex);
      ::close(m_handed.at(i).fd);
      ended = m_handed.at(i).admitted.ended;
    }
    ended();
  }
  std::function<void()> ended(std::size_t i) {
    std::lock_guard lock(m_mutex);
    return m_handed.at(i).admitted.ended;
  }

 private:
  struct Handed {
    int fd;
    std::string from;
    PeerListener::Admitted admitted;
  };
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::vector<Handed> m_handed;
};

}  // namespace

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

TEST_CASE("the peer port hands over what it admits, counts it until its end, and names it on a ban", "[unit][net]") {
  auto bound = PeerListener::bind(p2pd::HostPort{"127.0.0.1", 0}, ConnectionCaps{2, 100});
  REQUIRE(bound.has_value());
  auto listener = std::move(*bound);
  PeerScores scores;
  Owner owner;
  REQUIRE(listener->start(owner.hand_over(), scores));
  std::vector<int> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(connect_tcp(listener->port()));
    REQUIRE(clients.back() >= 0);
  }
  // Two are handed over; the third, past the address's cap, is closed.
  REQUIRE(owner.wait_for(2));
  CHECK(closed_by_peer(clients[2], std::chrono::steady_clock::now() + 2s));
  CHECK(owner.count() == 2);
  CHECK(owner.from(0) == "127.0.0.1");
  CHECK(owner.id(0) != owner.id(1));
  // Once one's end is reported (twice, even), there is room for one more.
  owner.end(0);
  owner.ended(0)();
  clients.push_back(connect_tcp(listener->port()));
  REQUIRE(owner.wait_for(3));
  CHECK(owner.id(2) != owner.id(0));
  clients.push_back(connect_tcp(listener->port()));
  CHECK(closed_by_peer(clients.back(), std::chrono::steady_clock::now() + 2s));
  // A ban names the connections still counted, for their owner to close;
  // the listener cuts nothing itself, and refuses new ones as they come.
  REQUIRE(scores.penalize("127.0.0.1", scores.rules().ban_score, PeerScores::Clock::now()));
  const auto named = listener->ban("127.0.0.1", "a test");
  CHECK(std::set<ConnectionId>(named.begin(), named.end()) == std::set<ConnectionId>{owner.id(1), owner.id(2)});
  CHECK_FALSE(closed_by_peer(clients[1], std::chrono::steady_clock::now() + 100ms));
  clients.push_back(connect_tcp(listener->port()));
  CHECK(closed_by_peer(clients.back(), std::chrono::steady_clock::now() + 2s));
  CHECK(owner.count() == 3);
  CHECK(listener->ban("10.9.9.9", "a test").empty());
  // Ends reported after the listener is gone are harmless.
  listener->stop();
  listener.reset();
  owner.end(1);
  owner.end(2);
  for (int fd : clients) ::close(fd);
}

TEST_CASE("connection limits: IPv6 callers are counted by their /64", "[unit][net]") {
  CHECK(address_key("203.0.113.9") == "203.0.113.9");
  CHECK(address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64");
  CHECK(address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9"));
  CHECK(address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1"));
  CHECK(address_key("::ffff:192.0.2.7") == "192.0.2.7");
  CHECK(address_key("::1") == "::/64");
}
