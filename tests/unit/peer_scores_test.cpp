// Misbehaviour scores: points add up to a ban, decay with time, and the
// table of addresses stays bounded.
#include <catch2/catch.hpp>

#include "daemon/net/peer_scores.hpp"

using namespace p2pd::net;
using namespace std::chrono_literals;

namespace {
const auto t0 = PeerScores::Clock::time_point{} + 24h;
}

TEST_CASE("peer scores: malformed messages in a burst ban an address for a while", "[unit][net]") {
  PeerScores scores;
  for (int i = 0; i < 9; ++i) CHECK_FALSE(scores.penalize("203.0.113.7", kMalformedMessagePoints, t0));
  CHECK_FALSE(scores.banned("203.0.113.7", t0));
  CHECK(scores.penalize("203.0.113.7", kMalformedMessagePoints, t0));  // the tenth at once
  CHECK(scores.banned("203.0.113.7", t0 + 1s));
  CHECK_FALSE(scores.banned("203.0.113.8", t0 + 1s));
  // More while banned changes nothing and reports no second ban.
  CHECK_FALSE(scores.penalize("203.0.113.7", 1000, t0 + 2s));
  CHECK(scores.banned("203.0.113.7", t0 + 10min - 1s));
  CHECK_FALSE(scores.banned("203.0.113.7", t0 + 10min));
  // Afterwards it starts from nothing.
  CHECK(scores.score("203.0.113.7", t0 + 10min) == 0);
  // One a second: the eleventh bans (what decayed meanwhile is about a point).
  PeerScores steady;
  for (int i = 0; i < 10; ++i) CHECK_FALSE(steady.penalize("203.0.113.9", kMalformedMessagePoints, t0 + i * 1s));
  CHECK(steady.penalize("203.0.113.9", kMalformedMessagePoints, t0 + 10s));
}

TEST_CASE("peer scores: a point now and then never adds up to a ban", "[unit][net]") {
  PeerScores scores;
  // One malformed message every five minutes for a day: the score settles
  // near 10 / (1 - 2^(-1/2)) ~ 34, well under 100.
  for (int i = 0; i < 24 * 12; ++i)
    CHECK_FALSE(scores.penalize("198.51.100.1", kMalformedMessagePoints, t0 + i * 5min));
  CHECK(scores.score("198.51.100.1", t0 + 24h) < 40);
  // Halved every ten minutes.
  PeerScores fresh;
  fresh.penalize("198.51.100.2", 80, t0);
  CHECK(fresh.score("198.51.100.2", t0 + 10min) == Approx(40));
  CHECK(fresh.score("198.51.100.2", t0 + 20min) == Approx(20));
}

TEST_CASE("peer scores: the table forgets the least suspicious address when full, never a ban", "[unit][net]") {
  ScoreRules rules;
  rules.max_addresses = 3;
  PeerScores scores(rules);
  CHECK(scores.penalize("a", 100, t0));  // banned
  scores.penalize("b", 50, t0);
  scores.penalize("c", 5, t0);
  scores.penalize("d", 20, t0);  // forgets c
  CHECK(scores.score("c", t0) == 0);
  CHECK(scores.score("b", t0) == Approx(50));
  CHECK(scores.score("d", t0) == Approx(20));
  CHECK(scores.banned("a", t0 + 1s));
  for (int i = 0; i < 100; ++i) scores.penalize("x" + std::to_string(i), 1, t0);
  CHECK(scores.banned("a", t0 + 1s));
}
