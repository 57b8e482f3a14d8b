#include <catch2/catch.hpp>

#include "daemon/nat/observed_addresses.hpp"
#include "daemon/nat/reachability.hpp"
#include "daemon/nat/stun_client.hpp"

using namespace p2pd;
using namespace p2pd::nat;

namespace {
std::vector<std::uint8_t> bytes_of(const std::string& s) {
  return {s.begin(), s.end()};
}
// Deterministic ids for tests (the daemon draws them from RAND_bytes).
StunClient::TransactionSource counting_ids() {
  auto next = std::make_shared<std::uint8_t>(0);
  return [next] {
    TransactionId id{};
    id.fill(++*next);
    return id;
  };
}
TransactionId transaction_of(const std::string& request) {
  auto decoded = decode_stun(bytes_of(request));
  REQUIRE(decoded);
  return decoded->transaction;
}
}  // namespace

TEST_CASE("STUN requests are retransmitted on RFC 8489's schedule, then the transaction fails", "[unit][stun]") {
  StunClient client({HostPort{"192.0.2.10", 3478}}, counting_ids());
  std::vector<std::uint64_t> sent_at;
  TransactionId first{};
  for (std::uint64_t tick = 0; tick < 2000; ++tick) {
    for (auto& datagram : client.tick(tick)) {
      const auto id = transaction_of(datagram.bytes);
      if (sent_at.empty()) first = id;
      if (sent_at.size() < 7) CHECK(id == first);  // retransmissions reuse the transaction
      sent_at.push_back(tick);
    }
    if (!client.servers()[0].error.empty()) {
      // §6.2.1: 0, 500, 1500, 3500, 7500, 15500, 31500 ms; failure at 39500 ms.
      CHECK(tick == 790);
      break;
    }
  }
  CHECK(sent_at == std::vector<std::uint64_t>{0, 10, 30, 70, 150, 310, 630});
  CHECK(client.servers()[0].failures == 1);
  // The next attempt waits a minute, with a new transaction.
  CHECK(client.tick(790 + StunClient::kRetryTicks - 1).empty());
  auto retry = client.tick(790 + StunClient::kRetryTicks);
  REQUIRE(retry.size() == 1);
  CHECK(transaction_of(retry[0].bytes) != first);
}

TEST_CASE("a STUN answer is matched by transaction, strays, duplicates and junk are ignored", "[unit][stun]") {
  StunClient client({HostPort{"192.0.2.10", 3478}, HostPort{"192.0.2.20", 3478}}, counting_ids());
  const std::vector<std::size_t> from0 = {0}, from1 = {1};
  auto requests = client.tick(0);
  REQUIRE(requests.size() == 2);
  const auto id0 = transaction_of(requests[0].bytes);
  const auto id1 = transaction_of(requests[1].bytes);
  const TransactionId stranger = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
  CHECK_FALSE(client.on_datagram(bytes_of(encode_binding_success(stranger, HostPort{"198.51.100.1", 1})), from0, 3));
  CHECK_FALSE(client.on_datagram(std::vector<std::uint8_t>{1, 2, 3}, from0, 3));
  CHECK_FALSE(client.on_datagram(bytes_of(encode_binding_request(id0)), from0, 3));  // a request, not an answer
  // Server 1 cannot answer for server 0 (it could forge the comparison).
  CHECK_FALSE(client.on_datagram(bytes_of(encode_binding_success(id0, HostPort{"198.51.100.1", 1})), from1, 3));
  CHECK(client.on_datagram(bytes_of(encode_binding_success(id0, HostPort{"198.51.100.1", 40000})), from0, 4));
  CHECK_FALSE(client.on_datagram(bytes_of(encode_binding_success(id0, HostPort{"198.51.100.1", 40000})), from0, 5));
  CHECK(client.servers()[0].mapped == HostPort{"198.51.100.1", 40000});
  CHECK(client.servers()[0].rtt_ticks == 4);
  CHECK(client.tick(10).size() == 1);  // only the unanswered server is retransmitted to
  CHECK(client.on_datagram(bytes_of(encode_binding_success(id1, HostPort{"198.51.100.1", 40000})), from1, 12));
  CHECK(client.tick(StunClient::kRefreshTicks - 1).empty());
  CHECK(client.tick(StunClient::kRefreshTicks + 4).size() == 1);  // refreshed 5 minutes after the answer
}

TEST_CASE("NAT mapping is classified from two servers' answers", "[unit][stun]") {
  const std::vector<std::string> local = {"10.0.1.2", "127.0.0.1"};
  CHECK(classify_mapping({}, local) == NatMapping::unknown);
  CHECK(classify_mapping({HostPort{"10.0.1.2", 5000}}, local) == NatMapping::none);
  CHECK(classify_mapping({HostPort{"203.0.113.1", 5000}}, local) == NatMapping::unknown);
  CHECK(classify_mapping({HostPort{"203.0.113.1", 5000}, HostPort{"203.0.113.1", 5000}}, local) ==
        NatMapping::endpoint_independent);
  CHECK(classify_mapping({HostPort{"203.0.113.1", 5000}, HostPort{"203.0.113.1", 61234}}, local) ==
        NatMapping::endpoint_dependent);
}

TEST_CASE("an observed address is adopted once observers on two IPs agree", "[unit][nat]") {
  ObservedAddresses observed;
  observed.observe("192.0.2.1", "203.0.113.5", 0);
  observed.observe("192.0.2.1", "203.0.113.5", 1);  // the same observer again
  CHECK(observed.adopted(2).empty());
  observed.observe("192.0.2.2", "198.51.100.9", 2);  // disagrees
  CHECK(observed.adopted(3).empty());
  observed.observe("192.0.2.3", "203.0.113.5", 3);
  CHECK(observed.adopted(4) == std::vector<std::string>{"203.0.113.5"});
  // An observer's new report replaces its old one.
  observed.observe("192.0.2.3", "198.51.100.9", 5);
  CHECK(observed.adopted(6) == std::vector<std::string>{"198.51.100.9"});
  // Reports expire.
  CHECK(observed.adopted(5 + ObservedAddresses::kForgetTicks + 1).empty());
  // Host names are no observers; one address in two spellings is one.
  ObservedAddresses spelled;
  spelled.observe("seed.example", "203.0.113.5", 0);
  spelled.observe("192.0.2.9", "::ffff:203.0.113.5", 0);
  spelled.observe("::ffff:192.0.2.9", "203.0.113.5", 0);
  CHECK(spelled.observer_count(1) == 1);
  CHECK(spelled.adopted(1).empty());
  // Bounded.
  for (int i = 0; i < 1000; ++i) observed.observe(fmt::format("10.0.{}.{}", i / 256, i % 256), "203.0.113.5", 10 + i);
  CHECK(observed.observer_count(2000) == ObservedAddresses::kMaxObservers);
}

TEST_CASE("reachability: one helper that dials back is proof, helpers that all fail mean private", "[unit][nat]") {
  ReachabilityProbe probe;
  const std::vector<HostPort> helpers = {HostPort{"192.0.2.1", 7420}, HostPort{"192.0.2.1", 7421},
                                         HostPort{"192.0.2.2", 7420}};
  auto round = probe.tick(0, helpers, 7420);
  REQUIRE(round.size() == 2);
  CHECK(round[0].helper.host != round[1].helper.host);  // different hosts first
  CHECK(round[0].port == 7420);
  CHECK(probe.tick(1, helpers, 7420).empty());  // one round at a time
  probe.on_answer(round[0].helper, false, "connection refused", 2);
  CHECK(probe.state() == Reachability::unknown);
  probe.on_answer(round[1].helper, false, "timed out", 3);
  CHECK(probe.state() == Reachability::private_);
  CHECK(probe.tick(4, helpers, 7420).empty());  // the next round is 10 minutes away
  // A new port is a new question: unknown until answered.
  auto again = probe.tick(5, helpers, 7500);
  CHECK(probe.state() == Reachability::unknown);
  REQUIRE(again.size() == 2);
  probe.on_answer(again[0].helper, true, "", 6);
  probe.on_no_answer(again[1].helper, 7);
  CHECK(probe.state() == Reachability::public_);
  // Helpers that cannot be asked decide nothing; the round is retried soon.
  auto third = probe.tick(7 + ReachabilityProbe::kRecheckTicks, helpers, 7500);
  REQUIRE(third.size() == 2);
  for (const auto& r : third) probe.on_no_answer(r.helper, 8 + ReachabilityProbe::kRecheckTicks);
  CHECK(probe.state() == Reachability::public_);
  CHECK(probe.tick(8 + ReachabilityProbe::kRecheckTicks + ReachabilityProbe::kRetryTicks, helpers, 7500).size() == 2);
}
