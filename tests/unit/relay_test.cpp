// The relay (daemon/relay) over real loopback sockets, in one process: a
// RelayServer, a RelayLink whose legs are served by an echo standing in for
// the node's gRPC server, and callers with plain blocking sockets.

#include <sys/socket.h>
#include <sys/time.h>

#include <utility>  // before Boost.Asio: its awaitable.hpp needs std::exchange

#include <atomic>
#include <boost/asio.hpp>
#include <catch2/catch.hpp>
#include <future>
#include <thread>

#include "common/token_bucket.hpp"
#include "daemon/relay/relay_link.hpp"
#include "daemon/relay/relay_server.hpp"

using namespace p2pd;
using namespace p2pd::relay;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

NodeId node(std::uint8_t n) {
  std::array<std::uint8_t, NodeId::kBytes> bytes{};
  bytes.fill(n);
  return *NodeId::from_bytes(bytes);
}

Result<RelayAllocation> reserve(RelayServer& server, const NodeId& id, const std::string& from = "127.0.0.1") {
  std::promise<Result<RelayAllocation>> promise;
  server.reserve(id, from, "127.0.0.1", [&](Result<RelayAllocation> r) { promise.set_value(std::move(r)); });
  return promise.get_future().get();
}

// The reserving node's side: a RelayLink on its own io thread, and every
// leg it opens echoed back (what the node's gRPC server would answer).
struct ReservingNode {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::shared_ptr<RelayLink> link;
  std::atomic<int> legs{0};
  std::promise<std::string> lost;
  std::thread thread;

  struct Echo : std::enable_shared_from_this<Echo> {
    tcp::socket socket;
    std::array<char, 16384> buffer{};
    explicit Echo(tcp::socket s) : socket(std::move(s)) {}
    void run() {
      socket.async_read_some(asio::buffer(buffer),
                             [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                               if (ec) return;
                               asio::async_write(self->socket, asio::buffer(self->buffer.data(), n),
                                                 [self](boost::system::error_code write_ec, std::size_t) {
                                                   if (!write_ec) self->run();
                                                 });
                             });
    }
  };

  void open(const HostPort& allocation, const Secret& secret) {
    asio::post(io, [this, allocation, secret] {
      link = RelayLink::open(
          io, allocation, secret,
          [this](int fd) {
            ++legs;
            tcp::socket socket(io);
            socket.assign(tcp::v4(), fd);
            std::make_shared<Echo>(std::move(socket))->run();
          },
          [this](std::string why) { lost.set_value(std::move(why)); });
    });
  }
  void open_and_wait(const RelayAllocation& allocation);
  bool connected() {
    std::promise<bool> answer;
    asio::post(io, [&] { answer.set_value(link && link->connected()); });
    return answer.get_future().get();
  }
  ReservingNode() {
    thread = std::thread([this] { io.run(); });
  }
  ~ReservingNode() {
    asio::post(io, [this] {
      if (link) link->close();
      link.reset();
      work.reset();
    });
    thread.join();
  }
};

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds limit = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

// Opens the control connection and waits until the relay holds it (it
// counts the connection only once it has the greeting).
void ReservingNode::open_and_wait(const RelayAllocation& allocation) {
  open(allocation.addr, allocation.secret);
  REQUIRE(wait_until([&] { return connected(); }));
  std::this_thread::sleep_for(100ms);
}

// A caller: a blocking socket that gives up on a read after 5 s.
struct Caller {
  asio::io_context io;
  tcp::socket socket{io};
  explicit Caller(const HostPort& to) {
    socket.connect(tcp::endpoint(asio::ip::make_address(to.host), to.port));
    timeval timeout{5, 0};
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  // Sends `data` and reads as many bytes back; what came back.
  std::string round_trip(const std::string& data) {
    std::string back(data.size(), '\0');
    std::thread writer([&] {
      boost::system::error_code ignored;
      asio::write(socket, asio::buffer(data), ignored);
    });
    boost::system::error_code ec;
    const std::size_t n = asio::read(socket, asio::buffer(back), ec);
    writer.join();
    back.resize(n);
    return back;
  }
  // True when the relay closed the connection (EOF or reset), not a timeout.
  bool closed_by_peer() {
    char byte = 0;
    boost::system::error_code ec;
    socket.read_some(asio::buffer(&byte, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }
};

std::string pattern(std::size_t size) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>((i * 131 + 7) % 251);
  return data;
}

}  // namespace

TEST_CASE("token bucket: bursts, then the rate", "[relay]") {
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  TokenBucket bucket(1000, 500, t0);
  CHECK(bucket.take(800, t0) == 500);  // the burst
  CHECK(bucket.take(1, t0) == 0);
  CHECK(bucket.wait_time(t0) > 0ms);
  CHECK(bucket.wait_time(t0) <= 2ms);          // one byte at 1000 B/s
  CHECK(bucket.take(800, t0 + 100ms) == 100);  // 0.1 s of rate
  bucket.refund(40);
  CHECK(bucket.take(800, t0 + 100ms) == 40);
  CHECK(bucket.take(10000, t0 + 10s) == 500);  // never more than the burst
  TokenBucket unlimited(0, 0, t0);
  CHECK(unlimited.take(1 << 30, t0) == std::size_t{1} << 30);
  CHECK(unlimited.wait_time(t0) == 0ms);
}

TEST_CASE("relay: a caller reaches the reserving node through its allocation, byte for byte", "[relay]") {
  RelayServer server("127.0.0.1", RelayLimits{});
  auto allocation = reserve(server, node(1));
  REQUIRE(allocation);
  CHECK(allocation->addr.host == "127.0.0.1");
  CHECK(allocation->addr.port != 0);
  ReservingNode reserving;
  reserving.open_and_wait(*allocation);

  const std::string data = pattern(1 << 20);
  {
    Caller caller(allocation->addr);
    CHECK(caller.round_trip(data) == data);
    Caller second(allocation->addr);
    CHECK(second.round_trip("a second caller, on its own leg") == "a second caller, on its own leg");
    CHECK(reserving.legs == 2);
    CHECK(server.stats().circuits == 2);
  }
  CHECK(wait_until([&] { return server.stats().circuits == 0; }));
  const auto stats = server.stats();
  CHECK(stats.reservations == 1);
  CHECK(stats.bytes_relayed >= 2 * data.size());
  CHECK(stats.circuits_refused == 0);
}

TEST_CASE("relay: a wrong secret is refused and callers then get nothing", "[relay]") {
  RelayServer server("127.0.0.1", RelayLimits{});
  auto allocation = reserve(server, node(1));
  REQUIRE(allocation);
  Secret wrong = allocation->secret;
  wrong[0] ^= 1;
  ReservingNode impostor;
  impostor.open(allocation->addr, wrong);
  auto lost = impostor.lost.get_future();
  REQUIRE(lost.wait_for(5s) == std::future_status::ready);
  CHECK(lost.get().find("closed by the relay") != std::string::npos);
  Caller caller(allocation->addr);
  boost::system::error_code ignored;
  asio::write(caller.socket, asio::buffer(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")), ignored);
  CHECK(caller.closed_by_peer());
  CHECK(impostor.legs == 0);
}

TEST_CASE("relay: callers past the circuit limit are refused", "[relay]") {
  RelayLimits limits;
  limits.max_circuits = 2;
  RelayServer server("127.0.0.1", limits);
  auto allocation = reserve(server, node(1));
  REQUIRE(allocation);
  ReservingNode reserving;
  reserving.open_and_wait(*allocation);
  Caller first(allocation->addr);
  Caller second(allocation->addr);
  CHECK(first.round_trip("first caller") == "first caller");
  CHECK(second.round_trip("second caller") == "second caller");
  Caller third(allocation->addr);
  boost::system::error_code ignored;
  asio::write(third.socket, asio::buffer(std::string("third caller")), ignored);
  CHECK(third.closed_by_peer());
  CHECK(server.stats().circuits_refused == 1);
  CHECK(server.stats().circuits == 2);
}

TEST_CASE("relay: reservations are limited, and a node reserving again keeps its port", "[relay]") {
  RelayLimits limits;
  limits.max_reservations = 2;
  RelayServer server("127.0.0.1", limits);
  auto a = reserve(server, node(1));
  auto b = reserve(server, node(2));
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->addr.port != b->addr.port);
  auto c = reserve(server, node(3));
  REQUIRE_FALSE(c);
  CHECK(c.error().message.find("limit of 2 reservations") != std::string::npos);
  // Node ids are public: another address cannot take node 1's port.
  auto stolen = reserve(server, node(1), "127.0.0.2");
  REQUIRE_FALSE(stolen);
  CHECK(stolen.error().code == ErrorCode::permission_denied);
  auto again = reserve(server, node(1));
  REQUIRE(again);
  CHECK(again->addr == a->addr);
  CHECK(again->secret != a->secret);
  // The old secret no longer opens the reservation.
  ReservingNode stale;
  stale.open(a->addr, a->secret);
  auto lost = stale.lost.get_future();
  CHECK(lost.wait_for(5s) == std::future_status::ready);
  CHECK(server.stats().reservations == 2);
}

TEST_CASE("relay: the rate limit is shared and holds", "[relay]") {
  RelayLimits limits;
  limits.max_rate_bytes_per_s = 1 << 20;  // burst: a quarter second's worth
  RelayServer server("127.0.0.1", limits);
  auto allocation = reserve(server, node(1));
  REQUIRE(allocation);
  ReservingNode reserving;
  reserving.open_and_wait(*allocation);
  Caller caller(allocation->addr);
  // 512 KiB out and back: 1 MiB through the bucket, 0.75 MiB past its
  // burst, so at least 0.75 s at 1 MiB/s (bounded generously above).
  const std::string data = pattern(512 << 10);
  const auto start = std::chrono::steady_clock::now();
  CHECK(caller.round_trip(data) == data);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed >= 600ms);
  CHECK(elapsed < 20s);
}

TEST_CASE("relay: the reserving node notices the relay going away", "[relay]") {
  auto server = std::make_unique<RelayServer>("127.0.0.1", RelayLimits{});
  auto allocation = reserve(*server, node(1));
  REQUIRE(allocation);
  ReservingNode reserving;
  reserving.open(allocation->addr, allocation->secret);
  REQUIRE(wait_until([&] { return reserving.connected(); }));
  auto lost = reserving.lost.get_future();
  server->shutdown();
  REQUIRE(lost.wait_for(5s) == std::future_status::ready);
  CHECK_FALSE(lost.get().empty());
  // Shut down, the relay grants nothing.
  auto refused = reserve(*server, node(2));
  CHECK_FALSE(refused);
}
