// Calls a peer may make (daemon/net/call_rates): per node id, per address
// at four times the rate, bursts of two seconds' worth, bounded memory.
#include <catch2/catch.hpp>

#include "daemon/net/call_rates.hpp"

using namespace p2pd::net;
using namespace std::chrono_literals;

TEST_CASE("call rates: a burst of twice the rate, then the rate", "[unit][call_rates]") {
  CallRates rates(CallRateRules{10, 100});
  const auto t0 = CallRates::Clock::time_point{} + 1h;
  int admitted = 0;
  for (int i = 0; i < 50; ++i) admitted += rates.admit("node a", "", t0) ? 1 : 0;
  CHECK(admitted == 20);
  CHECK(rates.refused() == 30);
  // Another node is not held back by the first.
  CHECK(rates.admit("node b", "", t0));
  admitted = 0;
  for (int i = 0; i < 50; ++i) admitted += rates.admit("node a", "", t0 + 1s) ? 1 : 0;
  CHECK(admitted == 10);
}

TEST_CASE("call rates: many ids from one address share its bucket of four times the rate", "[unit][call_rates]") {
  CallRates rates(CallRateRules{10, 100});
  const auto t0 = CallRates::Clock::time_point{} + 1h;
  int admitted = 0;
  for (int node = 0; node < 10; ++node) {
    for (int i = 0; i < 20; ++i) admitted += rates.admit("node " + std::to_string(node), "10.0.0.1", t0) ? 1 : 0;
  }
  CHECK(admitted == 80);  // 4 x 10 a second, bursts of two seconds
  // A call the address refused was not charged to its node.
  CallRates fresh(CallRateRules{10, 100});
  for (int i = 0; i < 80; ++i) REQUIRE(fresh.admit("node " + std::to_string(i % 4), "10.0.0.2", t0));
  CHECK_FALSE(fresh.admit("node 9", "10.0.0.2", t0));
  CHECK(fresh.admit("node 9", "", t0));  // its own bucket is still full
}

TEST_CASE("call rates: the table stays bounded, idle buckets going first", "[unit][call_rates]") {
  CallRates rates(CallRateRules{10, 64});
  const auto t0 = CallRates::Clock::time_point{} + 1h;
  for (int i = 0; i < 1000; ++i) rates.admit("node " + std::to_string(i), "", t0 + std::chrono::milliseconds(i));
  CHECK(rates.tracked() <= 64);
  // A node at its limit is remembered while others churn through.
  for (int i = 0; i < 20; ++i) REQUIRE(rates.admit("node hot", "", t0 + 2s));
  CHECK_FALSE(rates.admit("node hot", "", t0 + 2s));
  for (int i = 0; i < 30; ++i) rates.admit("node cold " + std::to_string(i), "", t0 + 2s);
  CHECK_FALSE(rates.admit("node hot", "", t0 + 2s));
}
