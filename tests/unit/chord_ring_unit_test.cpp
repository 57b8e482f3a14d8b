// The Chord core on its own: what it answers and what it refuses to believe.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "daemon/chord/ring.hpp"

using namespace p2pd;
using namespace p2pd::chord;

namespace {

Peer peer(std::string_view name) {
  return Peer{NodeId::hash_of(name), std::string(name)};
}

}  // namespace

TEST_CASE("a new ring is its own successor and answers neighbour queries", "[unit][chord]") {
  Ring ring(peer("a"), RingConfig{});
  ring.create();
  CHECK(ring.is_member());
  REQUIRE(ring.successors().size() == 1);
  CHECK(ring.successors()[0] == ring.self());
  const auto answer = ring.receive(peer("b"), GetNeighbors{42});
  REQUIRE(answer);
  const auto* reply = std::get_if<Neighbors>(&*answer);
  REQUIRE(reply != nullptr);
  CHECK(reply->request_id == 42);
  CHECK(reply->successors == std::vector<Peer>{ring.self()});
  const auto pong = ring.receive(peer("b"), Ping{7});
  REQUIRE(pong);
  CHECK(std::get_if<Pong>(&*pong)->request_id == 7);
  CHECK(ring.take_outbox().empty());
}

TEST_CASE("replies nobody asked for, or from the wrong address, are ignored", "[unit][chord]") {
  Ring ring(peer("a"), RingConfig{});
  ring.join("boot");
  ring.tick();  // sends the first join query to "boot"
  auto out = ring.take_outbox();
  REQUIRE(out.size() == 1);
  const auto request_id = std::get<FindSuccessor>(out[0].message).request_id;
  const FoundSuccessor forged{request_id, true, {peer("x")}};
  ring.receive(peer("mallory"), forged);                                          // right id, wrong sender
  ring.receive(peer("boot"), FoundSuccessor{request_id + 1, true, {peer("x")}});  // wrong id
  CHECK_FALSE(ring.is_member());
  CHECK(ring.take_outbox().empty());
}

TEST_CASE("senders with absurd addresses are ignored", "[unit][chord]") {
  Ring ring(peer("a"), RingConfig{});
  ring.create();
  CHECK_FALSE(ring.receive(Peer{NodeId::hash_of(std::string_view("b")), std::string(kMaxAddrLength + 1, 'x')},
                           GetNeighbors{1}));
  CHECK_FALSE(ring.receive(Peer{NodeId::hash_of(std::string_view("b")), ""}, Ping{1}));
  CHECK(ring.take_outbox().empty());
}

TEST_CASE("rectify: a closer notifier replaces the predecessor, a farther one does not", "[unit][chord]") {
  const Peer self{*NodeId::from_hex(std::string(38, '0') + "80"), "self"};
  const Peer far{*NodeId::from_hex(std::string(38, '0') + "10"), "far"};
  const Peer near{*NodeId::from_hex(std::string(38, '0') + "70"), "near"};
  Ring ring(self, RingConfig{});
  ring.create();
  ring.receive(far, Notify{});
  REQUIRE(ring.predecessor());
  CHECK(*ring.predecessor() == far);
  ring.receive(near, Notify{});
  CHECK(*ring.predecessor() == near);
  ring.receive(far, Notify{});
  CHECK(*ring.predecessor() == near);
}

TEST_CASE("a joiner checks its successor is alive and adopts at most r successors from its list", "[unit][chord]") {
  RingConfig config;
  config.successor_list_length = 4;
  const Peer self{*NodeId::from_hex(std::string(38, '0') + "50"), "self"};
  Ring ring(self, config);
  ring.join("boot");
  ring.tick();
  auto out = ring.take_outbox();
  const auto request_id = std::get<FindSuccessor>(out[0].message).request_id;
  // The bootstrap (id 0x40) lists 100 successors from 0x60 on: we belong
  // between it and 0x60.
  std::vector<Peer> listed;
  for (int i = 0; i < 100; ++i) {
    listed.push_back(Peer{*NodeId::from_hex(fmt::format("{:040x}", 0x60 + i)), fmt::format("n{}", i)});
  }
  ring.receive(Peer{*NodeId::from_hex(std::string(38, '0') + "40"), "boot"}, FoundSuccessor{request_id, true, listed});
  // Not a member before the named successor has answered for itself (Zave).
  CHECK_FALSE(ring.is_member());
  out = ring.take_outbox();
  REQUIRE(out.size() == 1);
  CHECK(out[0].to_addr == "n0");
  const auto confirm_id = std::get<GetNeighbors>(out[0].message).request_id;
  ring.receive(listed[0], Neighbors{confirm_id, std::nullopt, std::vector<Peer>(listed.begin() + 1, listed.end())});
  REQUIRE(ring.is_member());
  REQUIRE(ring.successors().size() == 4);
  CHECK(ring.successors()[0].addr == "n0");
  CHECK(ring.successors()[3].addr == "n3");
}

TEST_CASE("a joiner whose named successor does not answer tries the next one", "[unit][chord]") {
  RingConfig config;
  const Peer self{*NodeId::from_hex(std::string(38, '0') + "50"), "self"};
  const Peer boot{*NodeId::from_hex(std::string(38, '0') + "40"), "boot"};
  const Peer dead{*NodeId::from_hex(std::string(38, '0') + "60"), "dead"};
  const Peer live{*NodeId::from_hex(std::string(38, '0') + "70"), "live"};
  Ring ring(self, config);
  ring.join("boot");
  ring.tick();
  auto out = ring.take_outbox();
  ring.receive(boot, FoundSuccessor{std::get<FindSuccessor>(out[0].message).request_id, true, {dead, live}});
  out = ring.take_outbox();
  REQUIRE(out.size() == 1);
  CHECK(out[0].to_addr == "dead");
  for (std::uint32_t t = 0; t < config.request_timeout_ticks; ++t) ring.tick();
  out = ring.take_outbox();
  REQUIRE(out.size() == 1);
  CHECK(out[0].to_addr == "live");
  CHECK_FALSE(ring.is_member());
  ring.receive(live, Neighbors{std::get<GetNeighbors>(out[0].message).request_id, boot, {boot}});
  REQUIRE(ring.is_member());
  CHECK(ring.successors().front() == live);
}
