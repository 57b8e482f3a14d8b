// The Chord overlay on its own: replies of the wrong kind, greedy peers and
// the version every holder of a write agrees on.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "daemon/chord/overlay.hpp"

using namespace p2pd;
using namespace p2pd::chord;

namespace {

Peer at(unsigned id_low_byte, std::string addr) {
  return Peer{*NodeId::from_hex(fmt::format("{:040x}", id_low_byte)), std::move(addr)};
}

template <class T>
std::vector<std::pair<std::string, T>> sent(std::vector<Outgoing> out) {
  std::vector<std::pair<std::string, T>> found;
  for (auto& o : out) {
    if (auto* m = std::get_if<T>(&o.message)) found.emplace_back(o.to_addr, *m);
  }
  return found;
}

// A node "self" (id 0x80) that knows "succ" (0xa0) as its successor and
// "pred" (0x40) as its predecessor, as a stabilized ring of three would.
Overlay member_of_three() {
  Overlay overlay(at(0x80, "self"), OverlayConfig{});
  overlay.join("pred");
  overlay.tick();
  auto out = overlay.take_outbox();
  REQUIRE(out.size() == 1);
  const auto rid = std::get<FindSuccessor>(out[0].message).request_id;
  overlay.receive(at(0x40, "pred"), FoundSuccessor{rid, true, {at(0xa0, "succ"), at(0x40, "pred")}});
  const auto confirm = sent<GetNeighbors>(overlay.take_outbox());
  REQUIRE(confirm.size() == 1);
  overlay.receive(at(0xa0, "succ"),
                  Neighbors{confirm[0].second.request_id, at(0x80, "self"), {at(0x40, "pred"), at(0x80, "self")}});
  overlay.receive(at(0x40, "pred"), Notify{});
  REQUIRE(overlay.ring().is_member());
  REQUIRE(overlay.ring().predecessor() == at(0x40, "pred"));
  // One stabilize round: succ's list runs back round to us.
  overlay.take_outbox();
  overlay.tick();
  for (const auto& [to, ask] : sent<GetNeighbors>(overlay.take_outbox())) {
    REQUIRE(to == "succ");
    overlay.receive(at(0xa0, "succ"),
                    Neighbors{ask.request_id, at(0x80, "self"), {at(0x40, "pred"), at(0x80, "self")}});
  }
  overlay.take_outbox();
  REQUIRE(overlay.ring().successors() == std::vector<Peer>{at(0xa0, "succ"), at(0x40, "pred")});
  return overlay;
}

}  // namespace

TEST_CASE("a reply of the wrong kind neither ends nor stalls a lookup", "[unit][chord]") {
  Overlay overlay = member_of_three();
  const NodeId key = *NodeId::from_hex(fmt::format("{:040x}", 0x30));  // owned past pred: routed
  const auto op = overlay.lookup(key);
  const auto hops = sent<FindSuccessor>(overlay.take_outbox());
  REQUIRE(hops.size() == 1);
  // The right peer and request id, but a Pong: ignored, the request stays open.
  overlay.receive(at(0xa0, hops[0].first), Pong{hops[0].second.request_id});
  overlay.receive(at(0xa0, hops[0].first), Neighbors{hops[0].second.request_id, std::nullopt, {}});
  CHECK(overlay.take_results().empty());
  overlay.receive(at(0xa0, hops[0].first), FoundSuccessor{hops[0].second.request_id, true, {at(0x40, "pred")}});
  const auto results = overlay.take_results();
  REQUIRE(results.size() == 1);
  CHECK(results[0].operation_id == op);
  CHECK(results[0].ok);
  CHECK(results[0].holders.front() == at(0x40, "pred"));
}

TEST_CASE("a peer asking for one key many times gets it once", "[unit][chord][kv]") {
  Overlay overlay = member_of_three();
  const NodeId mine = *NodeId::from_hex(fmt::format("{:040x}", 0x70));  // in (pred, self]
  auto put = overlay.receive(at(0x40, "pred"), Put{1, mine, std::string(1000, 'v'), 0});
  REQUIRE(std::get<PutReply>(*put).stored);
  for (int i = 0; i < 40; ++i) overlay.tick();  // a sync round: the owner offers to its replicas
  const auto offers = sent<SyncOffer>(overlay.take_outbox());
  REQUIRE_FALSE(offers.empty());
  const auto& [to, offer] = offers.front();
  overlay.receive(at(0xa0, to), SyncWant{offer.request_id, std::vector<NodeId>(kMaxSyncItems, mine)});
  CHECK(sent<Put>(overlay.take_outbox()).size() == 1);
}

TEST_CASE("every holder of a write stores the version the owner gave it", "[unit][chord][kv]") {
  Overlay overlay = member_of_three();
  const NodeId key = *NodeId::from_hex(fmt::format("{:040x}", 0x90));  // owned by succ (0xa0)
  overlay.put(key, "value");
  const auto out = overlay.take_outbox();
  CHECK(sent<FindSuccessor>(out).empty());  // (self, succ]: answered locally
  auto puts = sent<Put>(out);
  REQUIRE(puts.size() == 1);  // the owner first, alone
  CHECK(puts[0].first == "succ");
  CHECK(puts[0].second.version == 0);
  overlay.receive(at(0xa0, "succ"), PutReply{puts[0].second.request_id, true, 7, {}});
  puts = sent<Put>(overlay.take_outbox());
  // Then the replicas with version 7: pred (remote) and ourselves (local).
  REQUIRE(puts.size() == 1);
  CHECK(puts[0].first == "pred");
  CHECK(puts[0].second.version == 7);
  REQUIRE(overlay.store().find(key) != nullptr);
  CHECK(overlay.store().find(key)->version == 7);
  overlay.receive(at(0x40, "pred"), PutReply{puts[0].second.request_id, true, 7, {}});
  const auto results = overlay.take_results();
  REQUIRE(results.size() == 1);
  CHECK(results[0].ok);
  CHECK(results[0].copies == 3);
  CHECK(results[0].version == 7);
}

TEST_CASE("peers cannot hand the store a version that pins a key", "[unit][chord][kv]") {
  Overlay overlay = member_of_three();
  const NodeId key = *NodeId::from_hex(fmt::format("{:040x}", 0x70));
  auto reply = overlay.receive(at(0x40, "pred"), Put{1, key, "v", KvStore::kMaxVersion});
  CHECK_FALSE(std::get<PutReply>(*reply).stored);
  CHECK(overlay.store().find(key) == nullptr);
}
