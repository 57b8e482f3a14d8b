#include <catch2/catch.hpp>

#include "daemon/net/bootstrap_probe.hpp"

using namespace p2pd;
using namespace p2pd::net;

namespace {
HostPort hp(std::uint16_t port) {
  return HostPort{"127.0.0.1", port};
}
const NodeId kSelf = NodeId::hash_of(std::string_view("self"));
const NodeId kOther = NodeId::hash_of(std::string_view("other"));
}  // namespace

TEST_CASE("bootstrap peers are pinged once at a time, deduplicated", "[unit][bootstrap]") {
  BootstrapProbe probe({hp(1), hp(2), hp(1)}, kSelf);
  CHECK(probe.peers().size() == 2);
  CHECK(probe.due(0) == std::vector<HostPort>{hp(1), hp(2)});
  CHECK(probe.due(1).empty());  // in flight
  CHECK(probe.on_answer(hp(1), kOther) == BootstrapProbe::Verdict::joined);
  CHECK(probe.peers()[0].node_id == kOther);
  CHECK(probe.on_answer(hp(9), kOther) == BootstrapProbe::Verdict::unknown_peer);
  probe.on_failure(hp(2), 1);
  CHECK(probe.due(1000).size() == 1);  // the answered peer is never pinged again
}

TEST_CASE("failures back off exponentially up to a cap", "[unit][bootstrap]") {
  BootstrapProbe probe({hp(1)}, kSelf);
  std::uint64_t tick = 0;
  std::vector<std::uint64_t> waits;
  for (int attempt = 0; attempt < 10; ++attempt) {
    REQUIRE(probe.due(tick).size() == 1);
    probe.on_failure(hp(1), tick);
    const std::uint64_t next = probe.peers()[0].next_attempt_tick;
    CHECK(probe.due(next - 1).empty());  // not a tick early
    waits.push_back(next - tick);
    tick = next;
  }
  CHECK(waits == std::vector<std::uint64_t>{20, 40, 80, 160, 320, 640, 1280, 1280, 1280, 1280});
}

TEST_CASE("only some failures are worth a warning", "[unit][bootstrap]") {
  BootstrapProbe probe({hp(1)}, kSelf);
  std::vector<int> warned;
  for (int failure = 1; failure <= 30; ++failure) {
    REQUIRE(probe.due(1'000'000ULL * failure).size() == 1);
    if (probe.on_failure(hp(1), 1'000'000ULL * failure)) warned.push_back(failure);
  }
  CHECK(warned == std::vector<int>{1, 10, 20, 30});
}

TEST_CASE("a bootstrap address that is this node is recognised", "[unit][bootstrap]") {
  BootstrapProbe probe({hp(1)}, kSelf);
  REQUIRE(probe.due(0).size() == 1);
  CHECK(probe.on_answer(hp(1), kSelf) == BootstrapProbe::Verdict::is_self);
}
