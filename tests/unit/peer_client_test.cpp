// PeerClient against an in-process peer on loopback (over TLS, as between
// daemons) that answers what the test says: replies are validated against
// what the connection proved, deadlines hold, shutdown cancels.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <deque>
#include <mutex>

#include <grpcpp/grpcpp.h>

#include "daemon/net/peer_client.hpp"
#include "daemon/net/trace_interceptors.hpp"
#include "daemon/trace/tracer.hpp"
#include "proto/peer.grpc.pb.h"
#include "tests/support/secure_peer.hpp"

using namespace p2pd;
using namespace p2pd::net;
using namespace std::chrono_literals;

namespace {

// Stands in for the node's io thread: closures queue up and run_one() runs the next.
class Inbox {
 public:
  PeerClient::Post poster() {
    return [this](std::function<void()> fn) {
      std::lock_guard lock(m_mutex);
      m_queue.push_back(std::move(fn));
      m_cv.notify_all();
    };
  }
  bool run_one(std::chrono::milliseconds timeout) {
    std::unique_lock lock(m_mutex);
    if (!m_cv.wait_for(lock, timeout, [&] { return !m_queue.empty(); })) return false;
    auto fn = std::move(m_queue.front());
    m_queue.pop_front();
    lock.unlock();
    fn();
    return true;
  }

 private:
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<std::function<void()>> m_queue;
};

// A call the server never answers: it ends only when the client gives up
// (deadline, cancel) or the server shuts down. Finishing it from OnCancel,
// on gRPC's own thread, is the callback API's pattern; holding
// DefaultReactors and finishing them later from the test thread hit a
// double free inside gRPC 1.51 under ASan in a few runs in twenty.
class HungCall final : public grpc::ServerUnaryReactor {
 public:
  void OnCancel() override { Finish(grpc::Status::CANCELLED); }
  void OnDone() override { delete this; }
};

class FakePeer final : public proto::Peer::CallbackService {
 public:
  std::string node_id = std::string(20, '\x01');
  bool hang = false;

  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* context, const proto::PingRequest* request,
                                 proto::PingReply* reply) override {
    last_caller = request->node_id();
    if (hang) return new HungCall();
    auto* reactor = context->DefaultReactor();
    reply->set_node_id(node_id);
    reply->set_version("fake");
    reply->set_observed_addr("127.0.0.1:4242");
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  std::string last_caller;
};

// Served over TLS with a key of its own, as a daemon's peer port is; it
// answers with the id its key gives unless a test says otherwise.
struct FakeServer {
  FakePeer service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<tls::SecureTransport> transport = test::make_transport();
  std::unique_ptr<test::SecurePeerPort> port;
  explicit FakeServer(trace::Tracer* tracer = nullptr) {
    service.node_id = std::string(transport->self().bytes().begin(), transport->self().bytes().end());
    grpc::ServerBuilder builder;
    builder.RegisterService(&service);
    if (tracer != nullptr) {
      std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
      interceptors.push_back(make_trace_reader(*tracer));
      builder.experimental().SetInterceptorCreators(std::move(interceptors));
    }
    server = builder.BuildAndStart();
    REQUIRE(server);
    port = std::make_unique<test::SecurePeerPort>(*server, *transport);
  }
  ~FakeServer() {
    port.reset();
    transport->shutdown();
    server->Shutdown(std::chrono::system_clock::now() + 1s);
  }
  HostPort addr() const { return port->addr(); }
};

const NodeId kSelf = NodeId::hash_of(std::string_view("client"));

// One ping through a fresh client, as the node's io thread would see it.
Result<PingResult> ping_once(const HostPort& to, std::chrono::milliseconds timeout) {
  Inbox inbox;
  auto transport = test::make_transport();
  PeerClient client(kSelf, inbox.poster(), *transport);
  std::optional<Result<PingResult>> got;
  client.ping(to, timeout, [&](Result<PingResult> r) { got = std::move(r); });
  REQUIRE(inbox.run_one(timeout + 10s));
  REQUIRE(got);
  return std::move(*got);
}

}  // namespace

TEST_CASE("a well-formed ping reply is decoded", "[unit][peer_client]") {
  FakeServer peer;
  const auto got = ping_once(peer.addr(), 5s);
  REQUIRE(got.has_value());
  CHECK(got->node_id == peer.transport->self());
  CHECK(got->version == "fake");
  REQUIRE(got->observed);
  CHECK(got->observed->to_string() == "127.0.0.1:4242");
  CHECK(peer.service.last_caller == std::string(kSelf.bytes().begin(), kSelf.bytes().end()));
}

TEST_CASE("a reply with a malformed node id is rejected", "[unit][peer_client]") {
  FakeServer peer;
  peer.service.node_id = "short";
  const auto got = ping_once(peer.addr(), 5s);
  REQUIRE_FALSE(got.has_value());
  CHECK(got.error().code == ErrorCode::corrupt);
  CHECK_THAT(got.error().message, Catch::Contains("node id of 5 bytes"));
}

TEST_CASE("a reply claiming another node than the key the connection proved is rejected", "[unit][peer_client]") {
  FakeServer peer;
  peer.service.node_id = std::string(20, '\x01');
  const auto got = ping_once(peer.addr(), 5s);
  REQUIRE_FALSE(got.has_value());
  CHECK(got.error().code == ErrorCode::corrupt);
  CHECK_THAT(got.error().message,
             Catch::Contains("answered as node 01010101 but its key is node " + peer.transport->self().short_hex()));
}

TEST_CASE("deadlines hold and an unreachable peer fails", "[unit][peer_client]") {
  SECTION("nothing listens") {
    REQUIRE_FALSE(ping_once(HostPort{"127.0.0.1", 1}, 5s).has_value());
  }
  SECTION("the peer never answers") {
    FakeServer peer;
    peer.service.hang = true;
    const auto start = std::chrono::steady_clock::now();
    const auto got = ping_once(peer.addr(), 300ms);
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    REQUIRE_FALSE(got.has_value());
    CHECK(got.error().code == ErrorCode::timed_out);
  }
}

TEST_CASE("shutdown cancels calls in flight and refuses new ones", "[unit][peer_client]") {
  FakeServer peer;
  peer.service.hang = true;
  Inbox inbox;
  auto transport = test::make_transport();
  PeerClient client(kSelf, inbox.poster(), *transport);
  bool called = false;
  client.ping(peer.addr(), 60s, [&](Result<PingResult>) { called = true; });
  client.shutdown();  // returns without waiting out the 60 s deadline
  CHECK_FALSE(inbox.run_one(100ms));
  CHECK_FALSE(called);  // nothing is posted after shutdown
  std::optional<Result<PingResult>> late;
  client.ping(peer.addr(), 1s, [&](Result<PingResult> r) { late = std::move(r); });
  REQUIRE(inbox.run_one(1s));
  REQUIRE_FALSE(late->has_value());
  CHECK(client.channel_count() == 0);
}

TEST_CASE("every peer call carries the sender's clocks to the receiver", "[unit][peer_client][trace]") {
  std::uint64_t now_ms = 1'700'000'000'000;
  trace::Tracer sender("aaaa", nullptr, [&] { return now_ms; });
  trace::Tracer receiver("bbbb", nullptr, [&] { return now_ms; });
  FakeServer peer(&receiver);
  for (int i = 0; i < 100; ++i) sender.local("busy");
  Inbox inbox;
  auto transport = test::make_transport();
  PeerClient client(kSelf, inbox.poster(), *transport, &sender);
  std::optional<Result<PingResult>> got;
  client.ping(peer.addr(), 5s, [&](Result<PingResult> r) { got = std::move(r); });
  REQUIRE(inbox.run_one(15s));
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK(sender.lamport() == 101);    // the send ticked it
  CHECK(receiver.lamport() == 102);  // the receive went past the stamp
  CHECK(receiver.bad_contexts() == 0);
}
