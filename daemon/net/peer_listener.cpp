#include "daemon/net/peer_listener.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "common/log.hpp"

namespace p2pd::net {
namespace {

// Open a socket on `address`, bound and listening; -1 and errno on failure.
int listen_on(const addrinfo& address) {
  const int fd = ::socket(address.ai_family, address.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, address.ai_protocol);
  if (fd < 0) return -1;
  const int on = 1, off = 0;
  // SO_REUSEADDR: a restart binds again at once despite TIME_WAIT. Never
  // SO_REUSEPORT: a second daemon would share the port and its connections.
  bool ok = ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0;
  // A wildcard IPv6 address takes IPv4 callers too, as gRPC's own listener did.
  if (ok && address.ai_family == AF_INET6) ok = ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) == 0;
  ok = ok && ::bind(fd, address.ai_addr, address.ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0;
  if (!ok) {
    const int error = errno;
    ::close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

std::uint16_t bound_port(int fd) {
  sockaddr_storage address{};
  socklen_t size = sizeof address;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) return 0;
  if (address.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
  if (address.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  return 0;
}

}  // namespace

std::string peer_ip(int fd) {
  sockaddr_storage address{};
  socklen_t size = sizeof address;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) return {};
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    return ::inet_ntop(AF_INET, &v4.sin_addr, text.data(), text.size()) != nullptr ? text.data() : std::string();
  }
  if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    if (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) {
      return ::inet_ntop(AF_INET, &v6.sin6_addr.s6_addr[12], text.data(), text.size()) != nullptr ? text.data()
                                                                                                  : std::string();
    }
    return ::inet_ntop(AF_INET6, &v6.sin6_addr, text.data(), text.size()) != nullptr ? text.data() : std::string();
  }
  return {};
}

std::optional<HostPort> remote_address(int fd) {
  const std::string ip = peer_ip(fd);
  sockaddr_storage address{};
  socklen_t size = sizeof address;
  if (ip.empty() || ::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) return std::nullopt;
  const std::uint16_t port = address.ss_family == AF_INET
                                 ? ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port)
                                 : ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  return HostPort{ip, port};
}

std::string address_key(const std::string& ip) {
  in6_addr v6{};
  if (::inet_pton(AF_INET6, ip.c_str(), &v6) != 1) return ip;  // IPv4 (or not an address: as it is)
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    return ::inet_ntop(AF_INET, &v6.s6_addr[12], text.data(), text.size()) != nullptr ? text.data() : ip;
  }
  std::fill(v6.s6_addr + 8, v6.s6_addr + 16, 0);
  if (::inet_ntop(AF_INET6, &v6, text.data(), text.size()) == nullptr) return ip;
  return std::string(text.data()) + "/64";
}

Result<std::unique_ptr<PeerListener>> PeerListener::bind(const HostPort& listen, ConnectionCaps caps) {
  // A wildcard takes every address, IPv6 and IPv4 alike, as gRPC's own
  // listener did: one dual-stack socket on [::], or 0.0.0.0 where the host
  // has no IPv6.
  const bool wildcard = listen.host == "0.0.0.0" || listen.host == "::";
  std::vector<std::string> hosts =
      wildcard ? std::vector<std::string>{"::", "0.0.0.0"} : std::vector<std::string>{listen.host};
  std::unique_ptr<PeerListener> listener(new PeerListener());
  listener->m_admissions = std::make_shared<Admissions>(caps);
  std::string last_error = "no address";
  for (const auto& host : hosts) {
    if (wildcard && !listener->m_fds.empty()) break;  // [::] took IPv4 too
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port_text = std::to_string(listener->m_port != 0 ? listener->m_port : listen.port);
    if (const int rc = ::getaddrinfo(host.c_str(), port_text.c_str(), &hints, &found); rc != 0) {
      last_error = ::gai_strerror(rc);
      continue;
    }
    for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
      if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
      // Port 0: the first socket picks a free port, the others take the same.
      if (listener->m_port != 0) {
        if (a->ai_family == AF_INET) reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_port = htons(listener->m_port);
        if (a->ai_family == AF_INET6) {
          reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_port = htons(listener->m_port);
        }
      }
      const int fd = listen_on(*a);
      if (fd < 0) {
        last_error = std::strerror(errno);
        // One of a name's addresses (localhost's ::1 on a host without
        // IPv6) may fail while the others serve; say so.
        if (!wildcard) log::warn(log::Category::net, "cannot listen on one address of {}: {}", listen.host, last_error);
        continue;
      }
      listener->m_fds.push_back(fd);
      if (listener->m_port == 0) listener->m_port = bound_port(fd);
    }
    ::freeaddrinfo(found);
  }
  if (listener->m_fds.empty() || listener->m_port == 0) {
    return make_error(ErrorCode::unavailable,
                      "cannot listen on {}: {} (address in use, or not an address of this machine)", listen.to_string(),
                      last_error);
  }
  return listener;
}

PeerListener::~PeerListener() {
  stop();
  for (int fd : m_fds) ::close(fd);
}

bool PeerListener::start(HandOver hand_over, PeerScores& scores) {
  m_hand_over = std::move(hand_over);
  m_scores = &scores;
  m_loop = std::make_unique<AcceptLoop>(m_fds, "peer port", log::Category::net);
  return m_loop->start([this](int fd, int /*listener*/) { on_accept(fd); });
}

void PeerListener::stop() {
  if (m_loop) m_loop->stop();
}

void PeerListener::on_accept(int fd) {
  const auto from = remote_address(fd);
  if (!from) {
    ::close(fd);  // gone already
    return;
  }
  const std::string address = address_key(from->host);
  std::string refusal;
  {
    // The ban check, the admission and the hand-over happen under the one
    // lock ban() takes to collect an address's connections, so a ban
    // cannot fall between them: either this connection sees it, or ban()
    // returns its id after the owner has been handed it (and so can close
    // it).
    std::lock_guard lock(m_admissions->mutex);
    if (m_scores->banned(address, PeerScores::Clock::now())) {
      ::close(fd);
      return;
    }
    ConnectionLimits& limits = m_admissions->limits;
    const auto admission = limits.admit(address);
    if (admission.verdict == ConnectionLimits::Verdict::admitted) {
      auto ended = [admissions = m_admissions, id = admission.id] {
        std::lock_guard ended_lock(admissions->mutex);
        admissions->limits.forget(id);
      };
      m_hand_over(fd, *from, Admitted{admission.id, std::move(ended)});
      return;
    }
    refusal = admission.verdict == ConnectionLimits::Verdict::too_many_from_address
                  ? fmt::format("{} connections from it already (at most {})", limits.caps().per_address,
                                limits.caps().per_address)
                  : fmt::format("{} peer connections already (at most {})", limits.tracked(), limits.caps().total);
  }
  if (const auto held_back = m_refusal_log.admit()) {
    log::warn(log::Category::net, "refused a peer connection from {}: {}{}", address, refusal,
              log::held_back_note(*held_back));
  }
  ::close(fd);
}

std::vector<ConnectionId> PeerListener::ban(const std::string& address, std::string_view why) {
  if (const auto held_back = m_ban_log.admit()) {
    log::warn(log::Category::net, "banned {} for {} s: {}{}", address,
              std::chrono::duration_cast<std::chrono::seconds>(m_scores->rules().ban_duration).count(), why,
              log::held_back_note(*held_back));
  }
  std::lock_guard lock(m_admissions->mutex);
  return m_admissions->limits.connections_of(address);
}

}  // namespace p2pd::net
