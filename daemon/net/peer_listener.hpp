#pragma once
// The peer port's listening sockets. We bind and accept ourselves, so that
// the connections one address may hold are capped (connection_limits.hpp)
// before anything is spent on them, and hand each admitted connection on
// (to the TLS layer, then gRPC: peer_server.cpp), which reports its end.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/accept_loop.hpp"
#include "common/host_port.hpp"
#include "common/log_limiter.hpp"
#include "common/result.hpp"
#include "daemon/net/connection_limits.hpp"
#include "daemon/net/peer_scores.hpp"

namespace p2pd::net {

class PeerListener {
 public:
  // Binds every address `listen` names (a wildcard, an address, or a name
  // such as localhost: all of its addresses, on one port) and listens.
  static Result<std::unique_ptr<PeerListener>> bind(const HostPort& listen, ConnectionCaps caps);
  ~PeerListener();
  PeerListener(const PeerListener&) = delete;
  PeerListener& operator=(const PeerListener&) = delete;

  [[nodiscard]] std::uint16_t port() const { return m_port; }

  // An admitted connection, for whoever carries it: `id` is what ban()
  // returns for it, and `ended` must run once it has closed (once, on any
  // thread, even after the listener is gone; not from within hand_over)
  // so that it no longer counts against its address.
  struct Admitted {
    ConnectionId id = 0;
    std::function<void()> ended;
  };
  // Accepts on its own thread until stop(), handing each admitted connection
  // (and the address it came from) to `hand_over`, which owns it from
  // then; connections from addresses `scores` has banned are closed as
  // they come. `scores` must outlive stop(). `hand_over` runs under the
  // lock that ban() and `ended` take: it must pass the connection on and
  // return, never call either.
  using HandOver = std::function<void(int fd, const HostPort& from, Admitted admitted)>;
  bool start(HandOver hand_over, PeerScores& scores);
  // `address` (an address_key) was just banned in `scores`: logs it
  // (rate-limited) and returns the connections from it still counted
  // (handed over, no end reported), for their owner to close. A
  // connection admitted after this call sees the ban and is closed as it
  // comes; one admitted before was handed over before this returns. Any
  // thread, after start().
  std::vector<ConnectionId> ban(const std::string& address, std::string_view why);
  // Stops accepting and joins; connections handed on are their owner's. Idempotent.
  void stop();

 private:
  PeerListener() = default;
  void on_accept(int fd);

  // Shared with every `ended`, which may run after the listener is gone.
  struct Admissions {
    explicit Admissions(ConnectionCaps caps) : limits(caps) {}
    std::mutex mutex;  // the accept thread admits, the TLS thread forgets, a gRPC thread bans
    ConnectionLimits limits;
  };

  std::vector<int> m_fds;
  std::uint16_t m_port = 0;
  HandOver m_hand_over;
  PeerScores* m_scores = nullptr;
  std::shared_ptr<Admissions> m_admissions;  // made by bind(), before any thread can ban
  log::Limiter m_refusal_log{5, std::chrono::minutes(1)};
  log::Limiter m_ban_log{5, std::chrono::minutes(1)};
  std::unique_ptr<AcceptLoop> m_loop;
};

// A connected socket's peer, IPv4-mapped IPv6 addresses written as IPv4.
std::optional<HostPort> remote_address(int fd);

// The IP address of a connected socket's peer, IPv4-mapped IPv6 addresses
// written as IPv4; empty when it has none.
std::string peer_ip(int fd);

// What caps and scores count by: an IPv4 address as it is, an IPv6 address
// by its /64 ("2001:db8:1:2::/64"), since one subscriber gets a whole /64
// and could otherwise take a new address for every connection.
std::string address_key(const std::string& ip);

}  // namespace p2pd::net
