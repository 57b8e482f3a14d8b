// The peers' TLS layer (daemon/tls): certificates whose key is the node id,
// handshakes that prove it both ways, closed pools, the tunnel's bytes, and
// the local CONNECT proxy's refusals.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include "daemon/tls/connect_request.hpp"
#include "daemon/tls/node_certificate.hpp"
#include "daemon/tls/pool_secret.hpp"
#include "daemon/tls/secure_transport.hpp"
#include "tests/support/secure_peer.hpp"
#include "tests/support/temp_dir.hpp"

using namespace p2pd;
using namespace p2pd::tls;
using namespace std::chrono_literals;

namespace {

// A connected loopback TCP pair: {the dialler's end, the accepted end}.
std::pair<int, int> tcp_pair() {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(listener, 1) == 0);
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size) == 0);
  const int dialler = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(::connect(dialler, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  const int accepted = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  REQUIRE(accepted >= 0);
  ::close(listener);
  for (int fd : {dialler, accepted}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return {dialler, accepted};
}

// Shared with the transport's thread, which may still answer after a
// failed REQUIRE has left the test.
class Outcome {
 public:
  SecureTransport::Done callback() {
    return [state = m_state](Result<SecuredConnection> result) {
      std::lock_guard lock(state->mutex);
      state->result = std::move(result);
      state->cv.notify_all();
    };
  }
  Result<SecuredConnection> wait() {
    std::unique_lock lock(m_state->mutex);
    REQUIRE(m_state->cv.wait_for(lock, 15s, [&] { return m_state->result.has_value(); }));
    return *m_state->result;
  }

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable cv;
    std::optional<Result<SecuredConnection>> result;
  };
  std::shared_ptr<State> m_state = std::make_shared<State>();
};

struct Handshake {
  Result<SecuredConnection> client;
  Result<SecuredConnection> server;
};

Handshake handshake(SecureTransport& client, SecureTransport& server, std::optional<NodeId> expected) {
  auto [dialler, accepted] = tcp_pair();
  Outcome client_side;
  Outcome server_side;
  server.secure_inbound(accepted, std::nullopt, server_side.callback());
  client.secure_outbound(dialler, expected, client_side.callback());
  return Handshake{client_side.wait(), server_side.wait()};
}

// Reads what arrives on a non-blocking fd within a few seconds; `ended`
// says whether the other side closed.
std::string read_some(int fd, std::size_t want, bool* ended = nullptr) {
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    pollfd waiting{fd, POLLIN, 0};
    if (::poll(&waiting, 1, 100) <= 0) continue;
    char buffer[4096];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) {
      if (ended != nullptr) *ended = n == 0;
      break;
    }
    got.append(buffer, static_cast<std::size_t>(n));
  }
  return got;
}

PoolSecret secret(const std::string& text) {
  auto made = PoolSecret::from_bytes(text);
  REQUIRE(made.has_value());
  return *made;
}

}  // namespace

TEST_CASE("a node certificate carries the node's key and so its id", "[unit][tls]") {
  const std::string pem = test::new_node_key_pem();
  auto first = NodeCertificate::create(pem, nullptr);
  auto again = NodeCertificate::create(pem, nullptr);
  REQUIRE(first.has_value());
  REQUIRE(again.has_value());
  CHECK(first->id() == again->id());  // the id is the key's, whatever the certificate
  auto read_back = node_id_of_certificate(first->certificate());
  REQUIRE(read_back.has_value());
  CHECK(*read_back == first->id());
  auto other = NodeCertificate::create(test::new_node_key_pem(), nullptr);
  REQUIRE(other.has_value());
  CHECK(other->id() != first->id());
  CHECK_FALSE(NodeCertificate::create("not a key", nullptr).has_value());
}

TEST_CASE("a handshake proves each side's id to the other, and the bytes cross it", "[unit][tls]") {
  auto alice = test::make_transport();
  auto bob = test::make_transport();
  auto done = handshake(*alice, *bob, bob->self());
  REQUIRE(done.client.has_value());
  REQUIRE(done.server.has_value());
  CHECK(done.client->peer == bob->self());
  CHECK(done.server->peer == alice->self());

  const std::string hello = "PRI * HTTP/2.0 and more";
  REQUIRE(::write(done.client->fd, hello.data(), hello.size()) == static_cast<ssize_t>(hello.size()));
  CHECK(read_some(done.server->fd, hello.size()) == hello);
  const std::string big(200'000, 'x');  // many TLS records, both buffers full more than once
  std::thread writer([&] {
    std::size_t sent = 0;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (sent < big.size() && std::chrono::steady_clock::now() < deadline) {
      pollfd waiting{done.server->fd, POLLOUT, 0};
      ::poll(&waiting, 1, 100);
      const ssize_t n = ::send(done.server->fd, big.data() + sent, big.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<std::size_t>(n);
      if (n < 0 && errno != EAGAIN) break;
    }
  });
  const std::string got = read_some(done.client->fd, big.size());
  writer.join();
  CHECK(got == big);
  CHECK(alice->stats().open == 1);
  CHECK(bob->stats().open == 1);

  // One side closing ends the other: both tunnels close, and the far
  // side's gRPC sees the end of its stream.
  ::close(done.client->fd);
  bool ended = false;
  CHECK(read_some(done.server->fd, 1, &ended).empty());
  CHECK(ended);
  for (int i = 0; i < 100 && (alice->stats().open != 0 || bob->stats().open != 0); ++i)
    std::this_thread::sleep_for(20ms);
  CHECK(alice->stats().open == 0);
  CHECK(bob->stats().open == 0);
  ::close(done.server->fd);
}

TEST_CASE("a connection whose writes stall is ended, on both sides", "[unit][tls]") {
  // Alice's gRPC never reads, so her tunnel stops reading TLS, so bob's
  // tunnel's write to her blocks: without the stall limit both tunnels
  // would stay open for as long as the connection does.
  auto alice = test::make_transport(nullptr, 300ms);
  auto bob = test::make_transport(nullptr, 300ms);
  auto done = handshake(*alice, *bob, bob->self());
  REQUIRE(done.client.has_value());
  REQUIRE(done.server.has_value());
  const std::string chunk(64 * 1024, 'x');
  std::size_t sent = 0;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  bool refused = false;
  while (!refused && std::chrono::steady_clock::now() < deadline && sent < 512 * 1024 * 1024) {
    pollfd waiting{done.server->fd, POLLOUT, 0};
    if (::poll(&waiting, 1, 100) <= 0) continue;  // full: the stall is under way
    const ssize_t n = ::send(done.server->fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n > 0) sent += static_cast<std::size_t>(n);
    refused = n < 0 && errno != EAGAIN && errno != EINTR;  // the tunnel let go of its end
  }
  CHECK(refused);
  CHECK(sent > 0);
  for (int i = 0; i < 250 && (alice->stats().open != 0 || bob->stats().open != 0); ++i)
    std::this_thread::sleep_for(20ms);
  CHECK(alice->stats().open == 0);
  CHECK(bob->stats().open == 0);
  ::close(done.client->fd);
  ::close(done.server->fd);
}

TEST_CASE("a client that expected another node refuses the one that answered", "[unit][tls]") {
  auto alice = test::make_transport();
  auto bob = test::make_transport();
  const NodeId someone_else = NodeId::hash_of(std::string_view("someone else"));
  auto done = handshake(*alice, *bob, someone_else);
  REQUIRE_FALSE(done.client.has_value());
  CHECK(done.client.error().code == ErrorCode::permission_denied);
  CHECK_THAT(done.client.error().message, Catch::Contains("node " + bob->self().short_hex() + " answered, not"));
  CHECK(alice->stats().refused == 1);
  if (done.server) ::close(done.server->fd);
}

TEST_CASE("a closed pool lets in only nodes proving its secret, both ways", "[unit][tls]") {
  const auto ours = secret("the pool's secret, 32 bytes long!");
  const auto theirs = secret("another pool's secret, as long..");
  auto member = test::make_transport(&ours);
  auto member_too = test::make_transport(&ours);
  auto outsider = test::make_transport();
  auto stranger = test::make_transport(&theirs);

  SECTION("members") {
    auto done = handshake(*member, *member_too, std::nullopt);
    REQUIRE(done.client.has_value());
    REQUIRE(done.server.has_value());
    CHECK(done.server->peer == member->self());
    ::close(done.client->fd);
    ::close(done.server->fd);
  }
  SECTION("a node of no pool calls a member: the member refuses it") {
    auto done = handshake(*outsider, *member, std::nullopt);
    REQUIRE_FALSE(done.server.has_value());
    CHECK(done.server.error().code == ErrorCode::permission_denied);
    CHECK_THAT(done.server.error().message, Catch::Contains("has no proof of this pool's secret"));
    if (done.client) ::close(done.client->fd);
  }
  SECTION("a member calls a node of no pool: the member refuses to talk") {
    auto done = handshake(*member, *outsider, std::nullopt);
    REQUIRE_FALSE(done.client.has_value());
    CHECK_THAT(done.client.error().message, Catch::Contains("has no proof of this pool's secret"));
    if (done.server) ::close(done.server->fd);
  }
  SECTION("another pool's member") {
    auto done = handshake(*stranger, *member, std::nullopt);
    REQUIRE_FALSE(done.server.has_value());
    CHECK_THAT(done.server.error().message, Catch::Contains("proves another pool's secret"));
    if (done.client) ::close(done.client->fd);
  }
}

TEST_CASE("bytes that are not a p2pd TLS handshake are refused at once", "[unit][tls]") {
  auto server = test::make_transport();
  auto [dialler, accepted] = tcp_pair();
  Outcome outcome;
  server->secure_inbound(accepted, std::nullopt, outcome.callback());
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";  // a plaintext gRPC client
  REQUIRE(::write(dialler, preface.data(), preface.size()) == static_cast<ssize_t>(preface.size()));
  const auto started = std::chrono::steady_clock::now();
  auto result = outcome.wait();
  CHECK(std::chrono::steady_clock::now() - started < 5s);
  REQUIRE_FALSE(result.has_value());
  CHECK_THAT(result.error().message, Catch::Contains("TLS handshake failed"));
  CHECK(server->stats().refused == 1);
  ::close(dialler);
}

namespace {

// Counts a watched connection's ends; shared with the transport's thread.
struct Ends {
  std::shared_ptr<std::atomic<int>> count = std::make_shared<std::atomic<int>>(0);
  SecureTransport::Watch watch(std::uint64_t id) const {
    return SecureTransport::Watch{id, [count = count] { ++*count; }};
  }
  // Waits (a few seconds at most) for `want` ends, then a little more so
  // that a second report would be seen.
  int wait_for(int want) const {
    for (int i = 0; i < 500 && count->load() < want; ++i) std::this_thread::sleep_for(10ms);
    std::this_thread::sleep_for(50ms);
    return count->load();
  }
};

}  // namespace

TEST_CASE("a watched connection can be closed by its watcher, and its end is told once", "[unit][tls]") {
  auto server = test::make_transport();
  Ends ends;

  SECTION("a handshake refused") {
    auto [dialler, accepted] = tcp_pair();
    Outcome outcome;
    server->secure_inbound(accepted, std::nullopt, outcome.callback(), ends.watch(1));
    const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    REQUIRE(::write(dialler, preface.data(), preface.size()) == static_cast<ssize_t>(preface.size()));
    CHECK_FALSE(outcome.wait().has_value());
    CHECK(ends.wait_for(1) == 1);
    server->close_watched(1);  // ended already: nothing happens
    CHECK(ends.wait_for(2) == 1);
    ::close(dialler);
  }

  SECTION("closed while its handshake waits") {
    // A caller that connects and says nothing: its watcher (a ban) ends it
    // long before the handshake timeout would.
    auto [dialler, accepted] = tcp_pair();
    Outcome outcome;
    server->secure_inbound(accepted, std::nullopt, outcome.callback(), ends.watch(7));
    const auto started = std::chrono::steady_clock::now();
    server->close_watched(7);
    CHECK_FALSE(outcome.wait().has_value());
    CHECK(std::chrono::steady_clock::now() - started < SecureTransport::kHandshakeTimeout / 2);
    CHECK(ends.wait_for(1) == 1);
    bool ended = false;
    CHECK(read_some(dialler, 1, &ended).empty());
    CHECK(ended);
    ::close(dialler);
  }

  SECTION("ended by the peer once carried, or closed by its watcher") {
    const bool by_watcher = GENERATE(false, true);
    INFO("closed by " << (by_watcher ? "the watcher" : "the peer"));
    auto client = test::make_transport();
    auto [dialler, accepted] = tcp_pair();
    Outcome client_side;
    Outcome server_side;
    server->secure_inbound(accepted, std::nullopt, server_side.callback(), ends.watch(42));
    client->secure_outbound(dialler, server->self(), client_side.callback());
    auto secured_client = client_side.wait();
    auto secured_server = server_side.wait();
    REQUIRE(secured_client.has_value());
    REQUIRE(secured_server.has_value());
    const std::string hello = "hello";
    REQUIRE(::write(secured_client->fd, hello.data(), hello.size()) == static_cast<ssize_t>(hello.size()));
    CHECK(read_some(secured_server->fd, hello.size()) == hello);
    CHECK(ends.count->load() == 0);  // open, and carried: no end yet
    if (by_watcher) {
      server->close_watched(42);
    } else {
      ::close(secured_client->fd);
    }
    CHECK(ends.wait_for(1) == 1);
    // Either way both sides' gRPC see the end of their stream.
    bool ended = false;
    CHECK(read_some(secured_server->fd, 1, &ended).empty());
    CHECK(ended);
    if (by_watcher) {
      ended = false;
      CHECK(read_some(secured_client->fd, 1, &ended).empty());
      CHECK(ended);
      ::close(secured_client->fd);
    }
    for (int i = 0; i < 100 && server->stats().open != 0; ++i) std::this_thread::sleep_for(20ms);
    CHECK(server->stats().open == 0);
    server->close_watched(42);
    CHECK(ends.wait_for(2) == 1);
    ::close(secured_server->fd);
  }

  SECTION("not a TCP connection") {
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    Outcome outcome;
    server->secure_inbound(pair[0], std::nullopt, outcome.callback(), ends.watch(3));
    auto result = outcome.wait();
    REQUIRE_FALSE(result.has_value());
    CHECK_THAT(result.error().message, Catch::Contains("not a TCP connection"));
    CHECK(ends.wait_for(1) == 1);
    ::close(pair[1]);
  }

  SECTION("a second connection handed over under an id in use is refused, the first kept") {
    auto [first_dialler, first_accepted] = tcp_pair();
    auto [second_dialler, second_accepted] = tcp_pair();
    Outcome first;
    Outcome second;
    server->secure_inbound(first_accepted, std::nullopt, first.callback(), ends.watch(9));
    server->secure_inbound(second_accepted, std::nullopt, second.callback(), ends.watch(9));
    auto refused = second.wait();
    REQUIRE_FALSE(refused.has_value());
    CHECK_THAT(refused.error().message, Catch::Contains("already watched"));
    CHECK(ends.wait_for(1) == 1);  // the refused one's end is told
    CHECK(ends.wait_for(2) == 1);  // the first is still open and watched
    server->close_watched(9);
    CHECK_FALSE(first.wait().has_value());
    CHECK(ends.wait_for(2) == 2);
    ::close(first_dialler);
    ::close(second_dialler);
  }

  SECTION("unwatched connections and unknown ids are left alone") {
    auto client = test::make_transport();
    auto [dialler, accepted] = tcp_pair();
    Outcome client_side;
    Outcome server_side;
    server->secure_inbound(accepted, std::nullopt, server_side.callback());
    client->secure_outbound(dialler, server->self(), client_side.callback());
    auto secured_client = client_side.wait();
    auto secured_server = server_side.wait();
    REQUIRE(secured_client.has_value());
    REQUIRE(secured_server.has_value());
    server->close_watched(0);
    server->close_watched(5);
    std::this_thread::sleep_for(100ms);
    const std::string hello = "still here";
    REQUIRE(::write(secured_client->fd, hello.data(), hello.size()) == static_cast<ssize_t>(hello.size()));
    CHECK(read_some(secured_server->fd, hello.size()) == hello);
    CHECK(server->stats().open == 1);
    ::close(secured_client->fd);
    ::close(secured_server->fd);
  }
}

TEST_CASE("the CONNECT request gRPC sends is parsed, anything else refused", "[unit][tls]") {
  auto request = parse_connect_request(
      "CONNECT 10.0.0.7:7420 HTTP/1.0\r\nHost: 10.0.0.7:7420\r\nproxy-authorization: Basic "
      "cDJwZDpzZWNyZXQ=\r\n\r\n");
  REQUIRE(request.has_value());
  CHECK(request->target == "10.0.0.7:7420");
  CHECK(request->authorization == "Basic cDJwZDpzZWNyZXQ=");
  CHECK(basic_authorization("p2pd:secret") == "Basic cDJwZDpzZWNyZXQ=");
  CHECK(parse_connect_request("CONNECT [::1]:7420 HTTP/1.1\r\n\r\n")->authorization.empty());

  CHECK_FALSE(parse_connect_request("GET / HTTP/1.1\r\n\r\n").has_value());
  CHECK_FALSE(parse_connect_request("CONNECT 10.0.0.7:7420 HTTP/1.0\r\n").has_value());  // no blank line
  CHECK_FALSE(parse_connect_request("CONNECT 10.0.0.7:7420\r\n\r\n").has_value());
  CHECK_FALSE(parse_connect_request("CONNECT  HTTP/1.0\r\n\r\n").has_value());
  CHECK_FALSE(parse_connect_request("CONNECT a:1 HTTP/1.0\r\nno colon\r\n\r\n").has_value());
  CHECK_FALSE(parse_connect_request(std::string("CONNECT a:1 HTTP/1.0\r\nX: \x01\r\n\r\n")).has_value());
  CHECK_FALSE(parse_connect_request("\r\n\r\n").has_value());
  CHECK_FALSE(parse_connect_request("CONNECT a:1 HTTP/1.0\r\nX: " + std::string(5000, 'y') + "\r\n\r\n").has_value());
}

TEST_CASE("the local proxy serves only this process's channels", "[unit][tls]") {
  auto transport = test::make_transport();
  const std::string target = transport->proxy_target();
  REQUIRE(target.rfind("ipv4:127.0.0.1:", 0) == 0);
  const int port = std::stoi(target.substr(target.rfind(':') + 1));
  auto ask = [&](const std::string& request) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    if (!request.empty()) {
      REQUIRE(::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    std::string answer = read_some(fd, 12);
    ::close(fd);
    return answer;
  };
  // Another local user knows the port, not the password.
  CHECK(ask("CONNECT 127.0.0.1:1 HTTP/1.0\r\n\r\n").rfind("HTTP/1.0 407", 0) == 0);
  CHECK(ask("CONNECT 127.0.0.1:1 HTTP/1.0\r\nProxy-Authorization: Basic cDJwZDpzZWNyZXQ=\r\n\r\n")
            .rfind("HTTP/1.0 407", 0) == 0);
  CHECK(ask("GET / HTTP/1.0\r\n\r\n").rfind("HTTP/1.0 400", 0) == 0);
  // With it, a target where nothing listens is a bad gateway.
  CHECK(ask("CONNECT 127.0.0.1:1 HTTP/1.0\r\nProxy-Authorization: " + transport->proxy_authorization() + "\r\n\r\n")
            .rfind("HTTP/1.0 502", 0) == 0);
  // A connection that says nothing is closed within seconds.
  const auto started = std::chrono::steady_clock::now();
  CHECK(ask("").empty());
  CHECK(std::chrono::steady_clock::now() - started < 5s);
}

TEST_CASE("a pool secret file must be private and long enough", "[unit][tls]") {
  test::TempDir dir;
  const auto file = dir.path() / "pool.secret";
  auto write = [&](const std::string& text, mode_t mode) {
    std::ofstream(file, std::ios::trunc) << text;
    ::chmod(file.c_str(), mode);
  };
  write("0123456789abcdef0123456789abcdef\n", 0640);
  auto loaded = PoolSecret::load(file);
  REQUIRE(loaded.has_value());
  // The trailing newline is not part of it: `echo` and editors add one.
  const std::vector<std::uint8_t> key(32, 7);
  CHECK(loaded->verify(key, *secret("0123456789abcdef0123456789abcdef").proof_for(key)));
  CHECK_FALSE(loaded->verify(key, *secret("0123456789abcdef0123456789abcdeF").proof_for(key)));

  write("0123456789abcdef0123456789abcdef\n", 0644);
  auto open_to_all = PoolSecret::load(file);
  REQUIRE_FALSE(open_to_all.has_value());
  CHECK_THAT(open_to_all.error().message, Catch::Contains("accessible by others") && Catch::Contains("chmod 640"));
  write("short\n", 0600);
  auto too_short = PoolSecret::load(file);
  REQUIRE_FALSE(too_short.has_value());
  CHECK_THAT(too_short.error().message, Catch::Contains("at least 16 are needed"));
  REQUIRE_FALSE(PoolSecret::load(dir.path() / "missing").has_value());
}
