// Port mapping: the decision core (daemon/nat/port_mapper) on its own. The
// gateway calls it asks for are answered here by hand.

#include <algorithm>
#include <optional>

#include <catch2/catch.hpp>

#include "daemon/nat/port_mapper.hpp"

using namespace p2pd;
using nat::MappingProtocol;
using nat::MappingRequest;
using nat::PortMapper;

namespace {

constexpr std::uint64_t kSecond = PortMapper::kTicksPerSecond;
const std::vector<MappingProtocol> kBoth{MappingProtocol::natpmp, MappingProtocol::upnp};

nat::MappingGrant grant(MappingProtocol protocol, std::string host, std::uint16_t port, std::uint32_t lifetime_s) {
  nat::MappingGrant g;
  g.protocol = protocol;
  g.external = HostPort{std::move(host), port};
  g.lifetime_s = lifetime_s;
  g.gateway = "10.0.1.1";
  g.session = "urn:schemas-upnp-org:service:WANIPConnection:1 10.0.1.2";
  return g;
}

// The map request due now; fails the test when there is none.
MappingRequest due(PortMapper& mapper, std::uint64_t now) {
  auto request = mapper.tick(now);
  REQUIRE(request);
  REQUIRE(request->kind == MappingRequest::Kind::map);
  return *request;
}

}  // namespace

TEST_CASE("port mapper: NAT-PMP first, then UPnP, a whole failed round settles and backs off", "[port_mapping]") {
  PortMapper mapper(7420, kBoth);
  CHECK(mapper.enabled());
  CHECK_FALSE(mapper.settled());

  auto first = due(mapper, 0);
  CHECK(first.protocol == MappingProtocol::natpmp);
  CHECK(first.internal_port == 7420);
  CHECK(first.external_port == 7420);  // the same port outside, if the router can
  CHECK(first.lifetime_s == PortMapper::kLifetimeSeconds);
  CHECK_FALSE(mapper.tick(1));  // one call at a time
  mapper.on_failed("port 5351 refused", 1);
  CHECK_FALSE(mapper.settled());

  auto second = due(mapper, 2);
  CHECK(second.protocol == MappingProtocol::upnp);
  mapper.on_failed("no gateway answered", 40);
  CHECK(mapper.settled());
  CHECK_FALSE(mapper.mapping());
  CHECK(mapper.error() == "natpmp: port 5351 refused; upnp: no gateway answered");

  // The next round after a minute, then two, ... up to an hour.
  CHECK_FALSE(mapper.tick(40 + PortMapper::kFirstRetryTicks - 1));
  auto retry = due(mapper, 40 + PortMapper::kFirstRetryTicks);
  CHECK(retry.protocol == MappingProtocol::natpmp);
  std::uint64_t now = 40 + PortMapper::kFirstRetryTicks;
  mapper.on_failed("refused", now);
  due(mapper, now);
  mapper.on_failed("silent", now);
  // Each failed round doubles the wait, up to an hour.
  for (std::uint32_t failed = 2; failed < 12; ++failed) {
    const std::uint64_t backoff = std::min(PortMapper::kMaxRetryTicks, PortMapper::kFirstRetryTicks << (failed - 1));
    CHECK_FALSE(mapper.tick(now + backoff - 1));
    now += backoff;
    CHECK(due(mapper, now).protocol == MappingProtocol::natpmp);
    mapper.on_failed("refused", now);
    CHECK(due(mapper, now).protocol == MappingProtocol::upnp);
    mapper.on_failed("silent", now);
  }
  CHECK_FALSE(mapper.tick(now + PortMapper::kMaxRetryTicks - 1));
  CHECK(mapper.tick(now + PortMapper::kMaxRetryTicks));
}

TEST_CASE("port mapper: a mapping is renewed halfway to expiry, at the port it holds", "[port_mapping]") {
  PortMapper mapper(7420, kBoth);
  due(mapper, 0);
  mapper.on_mapped(grant(MappingProtocol::natpmp, "11.0.0.21", 7420, 600), 2);
  REQUIRE(mapper.mapping());
  CHECK(mapper.settled());
  CHECK(mapper.error().empty());
  CHECK(mapper.mapping()->external == HostPort{"11.0.0.21", 7420});
  const auto generation = mapper.generation();
  CHECK(mapper.renew_in(2) == 300 * kSecond);

  CHECK_FALSE(mapper.tick(2 + 300 * kSecond - 1));
  auto renew = due(mapper, 2 + 300 * kSecond);
  CHECK(renew.protocol == MappingProtocol::natpmp);  // the protocol that granted it
  CHECK(renew.external_port == 7420);
  mapper.on_mapped(grant(MappingProtocol::natpmp, "11.0.0.21", 7420, 600), 2 + 300 * kSecond);
  CHECK(mapper.renewals() == 1);
  CHECK(mapper.generation() == generation);  // nothing peers need to hear of

  // A renewal that moves the mapping is news.
  due(mapper, 2 + 600 * kSecond);
  mapper.on_mapped(grant(MappingProtocol::natpmp, "11.0.0.99", 7420, 600), 2 + 600 * kSecond);
  CHECK(mapper.generation() == generation + 1);
  CHECK(mapper.renewals() == 1);
}

TEST_CASE("port mapper: failed renewals are retried until the mapping expires, then it is sought again",
          "[port_mapping]") {
  PortMapper mapper(7420, kBoth);
  due(mapper, 0);
  mapper.on_failed("refused", 0);
  due(mapper, 0);
  mapper.on_mapped(grant(MappingProtocol::upnp, "11.0.0.22", 40000, 100), 0);  // another port than asked
  const auto generation = mapper.generation();

  std::uint64_t now = 50 * kSecond;
  auto renew = due(mapper, now);
  CHECK(renew.protocol == MappingProtocol::upnp);
  CHECK(renew.external_port == 40000);
  mapper.on_failed("HTTP error", now);
  CHECK(mapper.mapping());  // it lasts until it expires
  CHECK(mapper.error() == "renewing the upnp mapping: HTTP error");
  // Halfway to the expiry each time, at least a second apart.
  CHECK_FALSE(mapper.tick(now + 25 * kSecond - 1));
  int retries = 0;
  while (mapper.mapping() && retries < 20 && now < 200 * kSecond) {
    auto next = mapper.tick(now);
    if (!next) {
      ++now;
      continue;
    }
    CHECK(next->protocol == MappingProtocol::upnp);
    CHECK(next->gateway == "10.0.1.1");  // the gateway that granted it
    ++retries;
    mapper.on_failed("HTTP error", now);
  }
  CHECK(retries > 3);
  CHECK(retries < 20);
  CHECK_FALSE(mapper.mapping());  // the renewal at or after the expiry failed too
  CHECK(mapper.generation() == generation + 1);
  CHECK(now >= 100 * kSecond);
  // The search starts over at once, from NAT-PMP, asking for the old port.
  auto again = due(mapper, now);
  CHECK(again.protocol == MappingProtocol::natpmp);
  CHECK(again.external_port == 40000);
}

TEST_CASE("port mapper: a mapping behind another NAT is refused and removed", "[port_mapping]") {
  PortMapper mapper(7420, kBoth);
  due(mapper, 0);
  mapper.on_mapped(grant(MappingProtocol::natpmp, "100.64.3.4", 7420, 7200), 1);  // carrier-grade NAT
  CHECK_FALSE(mapper.mapping());
  auto removal = mapper.tick(2);
  REQUIRE(removal);
  CHECK(removal->kind == MappingRequest::Kind::unmap);
  CHECK(removal->protocol == MappingProtocol::natpmp);
  CHECK(removal->external_port == 7420);
  CHECK_FALSE(mapper.tick(3));  // the removal is in flight
  mapper.on_unmapped();
  auto next = due(mapper, 4);
  CHECK(next.protocol == MappingProtocol::upnp);
  mapper.on_failed("silent", 5);
  CHECK(mapper.settled());
  CHECK(mapper.error().find("natpmp: the gateway's own address 100.64.3.4 is not public") != std::string::npos);
}

TEST_CASE("port mapper: a renewal refused (the gateway's address went private) loses the mapping and removes it",
          "[port_mapping]") {
  PortMapper mapper(7420, kBoth);
  due(mapper, 0);
  mapper.on_mapped(grant(MappingProtocol::natpmp, "11.0.0.21", 7420, 60), 0);
  const auto generation = mapper.generation();
  due(mapper, 30 * kSecond);
  mapper.on_mapped(grant(MappingProtocol::natpmp, "192.168.0.2", 7420, 60), 30 * kSecond);
  CHECK_FALSE(mapper.mapping());
  CHECK(mapper.generation() == generation + 1);
  CHECK(mapper.error().find("renewing the natpmp mapping: the gateway's own address 192.168.0.2") == 0);
  auto removal = mapper.tick(30 * kSecond);
  REQUIRE(removal);
  CHECK(removal->kind == MappingRequest::Kind::unmap);
  mapper.on_unmapped();
  CHECK(due(mapper, 30 * kSecond).protocol == MappingProtocol::natpmp);  // sought again
}

TEST_CASE("port mapper: a grant longer than asked is cut to what was asked, a short one renews without flapping",
          "[port_mapping]") {
  PortMapper mapper(7420, kBoth, 60);
  due(mapper, 0);
  mapper.on_mapped(grant(MappingProtocol::natpmp, "11.0.0.21", 7420, 0xFFFFFFFF), 0);
  REQUIRE(mapper.mapping());
  CHECK(mapper.mapping()->lifetime_s == 60);
  CHECK(mapper.renew_in(0) == 30 * kSecond);

  // A 1-second grant: renewed each second, never dropped in between.
  std::uint64_t now = 30 * kSecond;
  const auto generation = mapper.generation();
  for (int i = 0; i < 10; ++i) {
    auto renew = due(mapper, now);
    CHECK(renew.external_port == 7420);
    mapper.on_mapped(grant(MappingProtocol::natpmp, "11.0.0.21", 7420, 1), now);
    REQUIRE(mapper.mapping());
    CHECK_FALSE(mapper.tick(now + kSecond - 1));
    now += kSecond;
  }
  CHECK(mapper.generation() == generation);
  CHECK(mapper.renewals() == 10);
}

TEST_CASE("port mapper: a permanent UPnP lease is added again every 20 minutes", "[port_mapping]") {
  PortMapper mapper(7420, {MappingProtocol::upnp});
  due(mapper, 0);
  mapper.on_mapped(grant(MappingProtocol::upnp, "11.0.0.22", 7420, 0), 0);
  CHECK_FALSE(mapper.tick(PortMapper::kPermanentRecheckTicks - 1));
  auto recheck = due(mapper, PortMapper::kPermanentRecheckTicks);
  CHECK(recheck.protocol == MappingProtocol::upnp);
  // One failed recheck leaves it in place (it may well still be there).
  mapper.on_failed("timed out", PortMapper::kPermanentRecheckTicks);
  CHECK(mapper.mapping());
}

TEST_CASE("port mapper: off asks nothing, release removes what is held", "[port_mapping]") {
  PortMapper off(7420, {});
  CHECK_FALSE(off.enabled());
  CHECK(off.settled());
  CHECK_FALSE(off.tick(0));
  CHECK_FALSE(off.tick(PortMapper::kMaxRetryTicks * 2));
  CHECK_FALSE(off.release());

  PortMapper mapper(7420, kBoth, 6);
  CHECK(due(mapper, 0).lifetime_s == 6);
  mapper.on_mapped(grant(MappingProtocol::natpmp, "11.0.0.21", 7421, 6), 0);
  CHECK(mapper.renew_in(0) == 3 * kSecond);
  auto removal = mapper.release();
  REQUIRE(removal);
  CHECK(removal->kind == MappingRequest::Kind::unmap);
  CHECK(removal->internal_port == 7420);
  CHECK(removal->external_port == 7421);
  CHECK(removal->gateway == "10.0.1.1");
  CHECK(removal->session == "urn:schemas-upnp-org:service:WANIPConnection:1 10.0.1.2");
  CHECK_FALSE(mapper.mapping());
  CHECK_FALSE(mapper.release());
}

TEST_CASE("port mapper: answers nobody asked for are ignored, port 0 is refused", "[port_mapping]") {
  PortMapper mapper(7420, kBoth);
  mapper.on_mapped(grant(MappingProtocol::natpmp, "11.0.0.21", 7420, 7200), 0);
  mapper.on_failed("stray", 0);
  CHECK_FALSE(mapper.mapping());
  CHECK_FALSE(mapper.settled());
  due(mapper, 0);
  mapper.on_mapped(grant(MappingProtocol::natpmp, "11.0.0.21", 0, 7200), 1);
  CHECK_FALSE(mapper.mapping());
  CHECK(due(mapper, 2).protocol == MappingProtocol::upnp);  // nothing to remove: port 0 maps nothing
}

TEST_CASE("port mapper: public addresses", "[port_mapping]") {
  for (const char* ip : {"11.0.0.21", "203.0.113.21", "8.8.8.8", "100.128.0.1", "172.32.0.1", "192.169.0.1"}) {
    INFO(ip);
    CHECK(nat::is_public_ipv4(ip));
  }
  for (const char* ip : {"10.0.1.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "100.64.0.1", "100.127.255.255",
                         "127.0.0.1", "169.254.1.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "", "1.2.3"}) {
    INFO(ip);
    CHECK_FALSE(nat::is_public_ipv4(ip));
  }
}
