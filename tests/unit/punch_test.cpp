// Hole punching: the planner (daemon/nat/punch_planner) on its own, and
// connect_from (daemon/net/punch_socket) over loopback: two connections
// from one local port, which is what learning a mapping and then punching
// from the same port needs.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>  // before Boost.Asio: its awaitable.hpp needs std::exchange

#include <boost/asio.hpp>
#include <catch2/catch.hpp>
#include <optional>

#include "daemon/nat/punch_planner.hpp"
#include "daemon/net/punch_socket.hpp"

using namespace p2pd;
using namespace std::chrono_literals;
using Planner = nat::PunchPlanner;
using State = Planner::State;

namespace {

const std::vector<std::string> kOne{"203.0.113.10:4000"};
const std::string kPeer = kOne.front();

State state_of(const Planner& planner, const std::string& peer) {
  return planner.peers().at(peer).state;
}

// Fails the round in flight for `peer` attempt by attempt, ticking as the
// planner asks; returns the tick after the last failure.
std::uint64_t fail_round(Planner& planner, const std::string& peer, std::uint64_t now) {
  for (std::uint32_t attempt = 1; attempt <= Planner::kAttemptsPerRound; ++attempt) {
    if (attempt > 1) {
      REQUIRE(planner.tick(now + Planner::kRetryTicks - 1, {peer}).empty());
      now += Planner::kRetryTicks;
      auto starts = planner.tick(now, {peer});
      REQUIRE(starts.size() == 1);
      REQUIRE(starts[0].attempt == attempt);
    }
    const bool over = planner.on_result(peer, false, "no connection", now);
    REQUIRE(over == (attempt == Planner::kAttemptsPerRound));
  }
  return now;
}

}  // namespace

TEST_CASE("a relayed peer is punched at once, and a success ends the round", "[punch]") {
  Planner planner;
  auto starts = planner.tick(100, kOne);
  REQUIRE(starts.size() == 1);
  CHECK(starts[0].peer == kPeer);
  CHECK(starts[0].attempt == 1);
  CHECK(state_of(planner, kPeer) == State::punching);
  // Nothing more while the attempt runs.
  CHECK(planner.tick(500, kOne).empty());
  CHECK(planner.on_result(kPeer, true, "", 510));
  CHECK(state_of(planner, kPeer) == State::punched);
  CHECK(planner.peers().at(kPeer).attempt == 1);  // what it took
  CHECK(planner.tick(100000, kOne).empty());
  CHECK(planner.attempts() == 1);
  CHECK(planner.successes() == 1);
}

TEST_CASE("failed attempts are retried within the round, then rounds back off, doubling to a cap", "[punch]") {
  Planner planner;
  REQUIRE(planner.tick(0, kOne).size() == 1);
  std::uint64_t now = fail_round(planner, kPeer, 0);
  CHECK(state_of(planner, kPeer) == State::failed);
  CHECK(planner.peers().at(kPeer).last_error == "no connection");
  std::uint64_t backoff = Planner::kFirstBackoffTicks;
  for (int round = 0; round < 8; ++round) {
    INFO("round " << round << ", backoff " << backoff);
    CHECK(planner.tick(now + backoff - 1, kOne).empty());
    now += backoff;
    auto starts = planner.tick(now, kOne);
    REQUIRE(starts.size() == 1);
    CHECK(starts[0].attempt == 1);  // a new round starts from the first attempt
    now = fail_round(planner, kPeer, now);
    backoff = std::min(backoff * 2, Planner::kMaxBackoffTicks);
  }
  CHECK(backoff == Planner::kMaxBackoffTicks);
  CHECK(planner.attempts() == 9 * Planner::kAttemptsPerRound);
  CHECK(planner.successes() == 0);
}

TEST_CASE("at most two punches run at once", "[punch]") {
  Planner planner;
  const std::vector<std::string> peers{"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"};
  auto starts = planner.tick(0, peers);
  REQUIRE(starts.size() == Planner::kMaxConcurrent);
  CHECK(planner.tick(1, peers).empty());
  planner.on_result(starts[0].peer, true, "", 2);
  auto next = planner.tick(3, peers);
  REQUIRE(next.size() == 1);
  CHECK(next[0].peer == "10.0.0.3:1");
  // A failed attempt frees its slot too: both retries run together.
  CHECK_FALSE(planner.on_result(starts[1].peer, false, "timeout", 4));
  CHECK_FALSE(planner.on_result("10.0.0.3:1", false, "timeout", 4));
  CHECK(planner.tick(4 + Planner::kRetryTicks, peers).size() == 2);
}

TEST_CASE("a broken direct connection is punched again soon, an operator's request runs at once", "[punch]") {
  Planner planner;
  planner.tick(0, kOne);
  planner.on_result(kPeer, true, "", 10);
  planner.on_lost(kPeer, 1000);
  CHECK(state_of(planner, kPeer) == State::waiting);
  CHECK(planner.tick(1000 + Planner::kAfterLossTicks - 1, kOne).empty());
  REQUIRE(planner.tick(1000 + Planner::kAfterLossTicks, kOne).size() == 1);
  // A path that breaks again soon waits twice as long; one that held for
  // kStableTicks is forgiven.
  planner.on_result(kPeer, true, "", 1200);
  planner.on_lost(kPeer, 1300);
  CHECK(planner.tick(1300 + 2 * Planner::kAfterLossTicks - 1, kOne).empty());
  REQUIRE(planner.tick(1300 + 2 * Planner::kAfterLossTicks, kOne).size() == 1);
  planner.on_result(kPeer, true, "", 1600);
  planner.tick(1600 + Planner::kStableTicks, kOne);
  CHECK(planner.peers().at(kPeer).losses == 0);
  planner.on_lost(kPeer, 1600 + Planner::kStableTicks);
  REQUIRE(planner.tick(1600 + Planner::kStableTicks + Planner::kAfterLossTicks, kOne).size() == 1);
  const std::uint64_t after_loss = 1600 + Planner::kStableTicks + Planner::kAfterLossTicks;
  planner.on_result(kPeer, true, "", after_loss);

  // A failed peer deep in its backoff: a request starts a round at the next tick.
  planner.on_lost(kPeer, after_loss + 1);
  REQUIRE(planner.tick(after_loss + 1 + 2 * Planner::kAfterLossTicks, kOne).size() == 1);
  std::uint64_t now = fail_round(planner, kPeer, after_loss + 1 + 2 * Planner::kAfterLossTicks);
  REQUIRE(state_of(planner, kPeer) == State::failed);
  planner.request(kPeer, now + 1);
  auto starts = planner.tick(now + 1, kOne);
  REQUIRE(starts.size() == 1);
  CHECK(starts[0].attempt == 1);
  // A request during an attempt changes nothing: its round's result counts.
  planner.request(kPeer, now + 2);
  CHECK(state_of(planner, kPeer) == State::punching);
  CHECK(planner.tick(now + 2, kOne).empty());
}

TEST_CASE("peers that stop being relayed are forgotten, except while punched at", "[punch]") {
  Planner planner;
  const std::vector<std::string> two{"10.0.0.1:1", "10.0.0.2:1"};
  auto starts = planner.tick(0, two);
  REQUIRE(starts.size() == 2);
  planner.on_result("10.0.0.1:1", true, "", 1);
  planner.tick(2, {});
  CHECK_FALSE(planner.peers().contains("10.0.0.1:1"));
  REQUIRE(planner.peers().contains("10.0.0.2:1"));  // its attempt is still out
  CHECK(planner.on_result("10.0.0.2:1", false, "gone", 3) == false);
  planner.tick(4, {});
  CHECK(planner.peers().empty());
  // A result for a peer the planner no longer knows is ignored.
  CHECK(planner.on_result("10.0.0.9:1", true, "", 5));
  CHECK(planner.successes() == 1);
}

TEST_CASE("connect_from shares one local port between connections, as punching needs", "[punch]") {
  boost::asio::io_context io;
  using tcp = boost::asio::ip::tcp;
  tcp::acceptor first(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  tcp::acceptor second(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  const HostPort first_addr{"127.0.0.1", first.local_endpoint().port()};
  const HostPort second_addr{"127.0.0.1", second.local_endpoint().port()};

  std::optional<Result<net::ConnectedSocket>> one;
  std::optional<Result<net::ConnectedSocket>> two;
  net::connect_from(io, 0, first_addr, 2000ms, [&](Result<net::ConnectedSocket> socket) {
    one = std::move(socket);
    if (!*one) return;
    // The second connection, to another address, from the same port.
    net::connect_from(io, (*one)->local_port, second_addr, 2000ms,
                      [&](Result<net::ConnectedSocket> other) { two = std::move(other); });
  });
  io.run_for(5s);
  REQUIRE(one.has_value());
  REQUIRE(*one);
  REQUIRE(two.has_value());
  REQUIRE(*two);
  CHECK((*two)->local_port == (*one)->local_port);
  CHECK((*one)->local_port != 0);
  sockaddr_in peer{};
  socklen_t size = sizeof(peer);
  REQUIRE(::getpeername((*two)->fd, reinterpret_cast<sockaddr*>(&peer), &size) == 0);
  CHECK(ntohs(peer.sin_port) == second_addr.port);
  ::close((*one)->fd);
  ::close((*two)->fd);
}

TEST_CASE("connect_from gives up on an address that does not answer", "[punch]") {
  // A listener whose backlog is full drops further SYNs without a word, as
  // a home router does.
  boost::asio::io_context io;
  using tcp = boost::asio::ip::tcp;
  tcp::acceptor silent(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  silent.listen(0);
  const auto endpoint = silent.local_endpoint();
  // Non-blocking connects (Asio's own connect would wait for an answer).
  std::vector<int> fillers;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(endpoint.port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 4; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    REQUIRE(fd >= 0);
    (void)::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to));  // in progress, or queued
    fillers.push_back(fd);
  }
  std::optional<Result<net::ConnectedSocket>> result;
  const auto started = std::chrono::steady_clock::now();
  net::connect_from(io, 0, HostPort{"127.0.0.1", endpoint.port()}, 300ms,
                    [&](Result<net::ConnectedSocket> socket) { result = std::move(socket); });
  io.run_for(5s);
  REQUIRE(result.has_value());
  REQUIRE_FALSE(*result);
  CHECK(result->error().code == ErrorCode::timed_out);
  CHECK(std::chrono::steady_clock::now() - started < 3s);
  for (const int fd : fillers) ::close(fd);
}

TEST_CASE("connect_from refuses names, and reports a refused address", "[punch]") {
  boost::asio::io_context io;
  std::vector<Result<net::ConnectedSocket>> results;
  auto keep = [&](Result<net::ConnectedSocket> socket) { results.push_back(std::move(socket)); };
  net::connect_from(io, 0, HostPort{"peer.example", 4000}, 1000ms, keep);
  // A port nobody listens on: refused at once.
  boost::asio::ip::tcp::acceptor closed(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const HostPort refused{"127.0.0.1", closed.local_endpoint().port()};
  closed.close();
  net::connect_from(io, 0, refused, 1000ms, keep);
  io.run_for(5s);
  REQUIRE(results.size() == 2);
  REQUIRE_FALSE(results[0]);
  CHECK(results[0].error().code == ErrorCode::invalid_argument);
  REQUIRE_FALSE(results[1]);
  CHECK(results[1].error().code == ErrorCode::unavailable);
}
