// The Chord wire codec: every message survives a round trip, and what a
// peer may not send is refused with a reason instead of reaching the core.
#include <catch2/catch.hpp>

#include "daemon/net/chord_codec.hpp"

using namespace p2pd;
using namespace p2pd::net;

namespace {

chord::Peer peer(std::string_view name, std::uint16_t port) {
  return chord::Peer{NodeId::hash_of(name), fmt::format("127.0.0.1:{}", port)};
}

chord::Message round_trip_request(const chord::Message& message) {
  const auto decoded = decode_request(encode_request(peer("self", 1), "cpu", message));
  REQUIRE(decoded);
  CHECK(decoded->from == peer("self", 1));
  CHECK(decoded->executor == "cpu");
  return decoded->message;
}

chord::Message round_trip_reply(const chord::Message& message, std::uint64_t request_id) {
  const auto decoded = decode_reply(encode_reply(NodeId::hash_of(std::string_view("me")), "cuda", message), request_id);
  REQUIRE(decoded);
  CHECK(decoded->from == NodeId::hash_of(std::string_view("me")));
  REQUIRE(decoded->message);
  return *decoded->message;
}

}  // namespace

TEST_CASE("chord requests and replies survive encoding", "[unit][chord][codec]") {
  const NodeId key = NodeId::hash_of(std::string_view("key"));
  CHECK(std::get<chord::FindSuccessor>(round_trip_request(chord::FindSuccessor{7, key})).key == key);
  CHECK(std::get<chord::FindSuccessor>(round_trip_request(chord::FindSuccessor{7, key})).request_id == 7);
  const auto put = std::get<chord::Put>(round_trip_request(chord::Put{3, key, std::string("a\0b", 3), 9}));
  CHECK(put.value == std::string("a\0b", 3));
  CHECK(put.version == 9);
  const auto offer =
      std::get<chord::SyncOffer>(round_trip_request(chord::SyncOffer{4, true, {chord::KeyVersion{key, 2}}}));
  CHECK(offer.from_owner);
  CHECK(offer.items == std::vector<chord::KeyVersion>{chord::KeyVersion{key, 2}});
  const auto leaving = std::get<chord::Leaving>(round_trip_request(chord::Leaving{{peer("a", 2), peer("b", 3)}}));
  CHECK(leaving.successors.size() == 2);
  CHECK(std::holds_alternative<chord::Notify>(round_trip_request(chord::Notify{})));

  const auto found =
      std::get<chord::FoundSuccessor>(round_trip_reply(chord::FoundSuccessor{0, true, {peer("a", 2)}}, 11));
  CHECK(found.request_id == 11);
  CHECK(found.done);
  CHECK(found.nodes == std::vector<chord::Peer>{peer("a", 2)});
  const auto neighbors =
      std::get<chord::Neighbors>(round_trip_reply(chord::Neighbors{0, peer("p", 5), {peer("s", 6)}}, 12));
  CHECK(neighbors.predecessor == peer("p", 5));
  const auto got = std::get<chord::GetReply>(round_trip_reply(chord::GetReply{0, true, "v", 4}, 13));
  CHECK(got.value == "v");
  CHECK(got.version == 4);
  const auto none = decode_reply(encode_reply(key, "cpu", std::nullopt), 1);
  REQUIRE(none);
  CHECK_FALSE(none->message);
}

TEST_CASE("chord messages a peer may not send are refused", "[unit][chord][codec]") {
  auto request = encode_request(peer("self", 1), "cpu", chord::Ping{1});
  SECTION("a short sender id") {
    request.mutable_from()->set_node_id("short");
    CHECK_FALSE(decode_request(request));
  }
  SECTION("a sender address that is not HOST:PORT") {
    request.mutable_from()->set_addr("not an address");
    CHECK_FALSE(decode_request(request));
  }
  SECTION("no body") {
    request.clear_body();
    CHECK_FALSE(decode_request(request));
  }
  SECTION("a key of the wrong length") {
    request.set_find_successor("123");
    CHECK_FALSE(decode_request(request));
  }
  SECTION("an oversized value") {
    request.mutable_put()->set_key(std::string(20, 'k'));
    request.mutable_put()->set_value(std::string(chord::kMaxValueBytes + 1, 'v'));
    CHECK_FALSE(decode_request(request));
  }
  SECTION("too many peers") {
    for (std::size_t i = 0; i <= chord::kMaxPeersAccepted; ++i) {
      auto* p = request.mutable_leaving()->add_peers();
      p->set_node_id(std::string(20, 'x'));
      p->set_addr("127.0.0.1:9");
    }
    CHECK_FALSE(decode_request(request));
  }
  SECTION("a reply without a body or with a bad answerer id") {
    p2pd::proto::ChordReply reply;
    reply.set_node_id(std::string(20, 'x'));
    CHECK_FALSE(decode_reply(reply, 1));
    reply.set_node_id("x");
    reply.mutable_pong();
    CHECK_FALSE(decode_reply(reply, 1));
  }
}
