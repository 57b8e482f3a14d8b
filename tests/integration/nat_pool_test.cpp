// Connectivity on loopback: dial-back reachability between real daemons,
// and p2pd's STUN client against stand-in STUN servers in this process
// (the netns tests run it against coturn behind real NAT rules).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "daemon/nat/stun_codec.hpp"
#include "tests/support/daemon_pool.hpp"

using namespace p2pd;
using namespace p2pd::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// A STUN server on `ip` (any 127.x address) that answers every Binding
// request with `mapped`, after a datagram of junk and one answer to a
// transaction nobody asked about (both must be ignored).
class StunStandIn {
 public:
  StunStandIn(const std::string& ip, HostPort mapped) : m_mapped(std::move(mapped)) {
    m_fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    ::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
    REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t length = sizeof addr;
    ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&addr), &length);
    m_addr = fmt::format("{}:{}", ip, ntohs(addr.sin_port));
    m_thread = std::thread([this] { serve(); });
  }
  ~StunStandIn() {
    m_stop = true;
    m_thread.join();
    ::close(m_fd);
  }
  [[nodiscard]] const std::string& addr() const { return m_addr; }
  [[nodiscard]] int answered() const { return m_answered; }

 private:
  void serve() {
    while (!m_stop) {
      pollfd p{m_fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      std::uint8_t buffer[1500];
      sockaddr_in from{};
      socklen_t length = sizeof from;
      const auto n = ::recvfrom(m_fd, buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&from), &length);
      if (n <= 0) continue;
      auto request = nat::decode_stun(std::span(buffer, static_cast<std::size_t>(n)));
      if (!request || request->klass != nat::StunClass::request) continue;
      auto send = [&](const std::string& bytes) {
        ::sendto(m_fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&from), length);
      };
      send("this is not STUN at all");
      nat::TransactionId other = request->transaction;
      other[0] ^= 0xFF;
      send(nat::encode_binding_success(other, HostPort{"192.0.2.66", 6666}));
      send(nat::encode_binding_success(request->transaction, m_mapped));
      ++m_answered;
    }
  }
  HostPort m_mapped;
  int m_fd = -1;
  std::string m_addr;
  std::atomic<bool> m_stop{false};
  std::atomic<int> m_answered{0};
  std::thread m_thread;
};

}  // namespace

TEST_CASE("peers dial each other back: loopback daemons are public", "[integration][nat]") {
  DaemonPool pool;
  REQUIRE(pool.add({}));
  REQUIRE(pool.add({"--bootstrap", pool.listen[0]}));
  for (std::size_t i = 0; i < 2; ++i) {
    INFO("node " << i);
    const bool public_ = eventually([&] { return pool.daemons[i]->status_json()["reachability"] == "public"; }, 30s);
    const json check = pool.daemons[i]->ctl_json({"netcheck"});
    INFO(check.dump());
    REQUIRE(public_);
    // The other node dialled back, at our listen port.
    CHECK_THAT(check["reachability_detail"].get<std::string>(),
               Catch::Contains("dialled back by " + pool.listen[1 - i]));
    CHECK(check["reachability_checked_s"].is_number_unsigned());
    CHECK(check["nat_mapping"] == "unknown");  // no --stun servers
    CHECK(check["stun"].empty());
    CHECK(check["port_mapping"] == "none");
  }
}

TEST_CASE("p2pd's STUN client: two servers that agree give the address and an endpoint-independent mapping",
          "[integration][nat]") {
  // 127.0.0.2 is loopback too: two servers on different IPs, two observers.
  StunStandIn first("127.0.0.1", HostPort{"198.51.100.7", 40000});
  StunStandIn second("127.0.0.2", HostPort{"198.51.100.7", 40000});
  DaemonPool pool;
  REQUIRE(pool.add({"--stun", first.addr(), "--stun", second.addr()}));
  const auto port = pool.listen[0].substr(pool.listen[0].rfind(':') + 1);
  const bool adopted = eventually(
      [&] { return pool.daemons[0]->status_json()["observed_addrs"] == json::array({"198.51.100.7:" + port}); }, 20s);
  const json check = pool.daemons[0]->ctl_json({"netcheck"});
  INFO(check.dump());
  REQUIRE(adopted);
  CHECK(check["nat_mapping"] == "endpoint-independent");
  REQUIRE(check["stun"].size() == 2);
  for (const auto& server : check["stun"]) {
    CHECK(server["mapped"] == "198.51.100.7:40000");  // not the stray answer's 192.0.2.66
    CHECK(server["error"].is_null());
  }
  CHECK(check["observed"][0]["observers"] == 2);
  CHECK(first.answered() >= 1);
  CHECK(second.answered() >= 1);
  CHECK(pool.daemons[0]->stop().exited_with(0));
}

TEST_CASE("p2pd's STUN client: different ports from two servers mean an endpoint-dependent mapping",
          "[integration][nat]") {
  StunStandIn first("127.0.0.1", HostPort{"198.51.100.7", 40000});
  StunStandIn second("127.0.0.3", HostPort{"198.51.100.7", 40001});
  DaemonPool pool;
  REQUIRE(pool.add({"--stun", first.addr(), "--stun", second.addr(), "--stun", "127.0.0.1:9"}));
  const bool classified =
      eventually([&] { return pool.daemons[0]->ctl_json({"netcheck"})["nat_mapping"] == "endpoint-dependent"; }, 20s);
  const json check = pool.daemons[0]->ctl_json({"netcheck"});
  INFO(check.dump());
  CHECK(classified);
  // The third server (the discard port) has not answered, and is still
  // being retried on the RFC's schedule: no error yet, no address.
  REQUIRE(check["stun"].size() == 3);
  CHECK(check["stun"][2]["mapped"].is_null());
  CHECK(check["stun"][2]["error"].is_null());
  CHECK(pool.daemons[0]->stop().exited_with(0));
}
