#include "daemon/tls/secure_transport.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/host_port.hpp"
#include "common/log.hpp"
#include "daemon/tls/connect_request.hpp"

namespace p2pd::tls {
namespace asio = boost::asio;

namespace {

std::string hex_of(const std::uint8_t* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  for (std::size_t i = 0; i < size; ++i) {
    text += kDigits[data[i] >> 4];
    text += kDigits[data[i] & 0xf];
  }
  return text;
}

void set_no_delay(int fd) {
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

// A connected TCP socket's family, for asio to adopt it; -1 if not one.
int socket_family(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return -1;
  return address.ss_family == AF_INET || address.ss_family == AF_INET6 ? address.ss_family : -1;
}

std::string remote_of(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return "a peer";
  char host[INET6_ADDRSTRLEN] = {};
  std::uint16_t port = 0;
  if (address.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    ::inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
    port = ntohs(v4->sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
    port = ntohs(v6->sin6_port);
    return fmt::format("[{}]:{}", host, port);
  }
  return fmt::format("{}:{}", host, port);
}

}  // namespace

// The loopback listener gRPC's channels dial (secure_transport.hpp).
struct SecureTransport::Proxy {
  explicit Proxy(asio::io_context& io) : acceptor(io) {}
  asio::ip::tcp::acceptor acceptor;
  static constexpr std::size_t kMaxSessions = 4096;
};

// One CONNECT: read the request, dial, handshake, answer 200, carry.
class SecureTransport::ProxySession : public std::enable_shared_from_this<ProxySession> {
 public:
  ProxySession(SecureTransport& transport, Socket client)
      : m_transport(transport),
        m_client(std::move(client)),
        m_timer(*transport.m_io),
        m_resolver(*transport.m_io),
        m_head(kMaxConnectRequestBytes) {}
  ~ProxySession() { --m_transport.m_proxy_sessions; }

  void start() {
    // gRPC sends its request at once; a local process that connects and
    // says nothing must not hold a session slot for long.
    arm_timer(kRequestTimeout);
    asio::async_read_until(m_client, m_head, "\r\n\r\n",
                           [self = shared_from_this()](const boost::system::error_code& ec, std::size_t end) {
                             self->on_request(ec, end);
                           });
  }

 private:
  static constexpr std::chrono::seconds kRequestTimeout{2};

  void arm_timer(std::chrono::steady_clock::duration after) {
    m_timer.expires_after(after);
    m_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      // A completion already queued when the tunnel took over must not end it.
      if (ec || self->m_tunnelled) return;
      self->m_timed_out = true;
      boost::system::error_code ignored;
      self->m_client.close(ignored);
      if (self->m_stream) self->m_stream->lowest_layer().close(ignored);
      self->m_resolver.cancel();
    });
  }

  void on_request(const boost::system::error_code& ec, std::size_t end) {
    if (ec) {  // gRPC went away, or the request was too large or slow
      m_timer.cancel();
      boost::system::error_code ignored;
      m_client.close(ignored);
      return;
    }
    if (end != m_head.size()) return answer(400, "bytes after the request");
    const std::string head(asio::buffers_begin(m_head.data()), asio::buffers_end(m_head.data()));
    auto request = parse_connect_request(head);
    if (!request) return answer(400, request.error().message);
    if (request->authorization.size() != m_transport.m_proxy_authorization.size() ||
        CRYPTO_memcmp(request->authorization.data(), m_transport.m_proxy_authorization.data(),
                      request->authorization.size()) != 0) {
      return answer(407, "wrong proxy password");
    }
    auto target = parse_host_port(request->target, false);
    if (!target || target->port == 0) return answer(400, "target must be HOST:PORT");
    m_target = request->target;
    arm_timer(kHandshakeTimeout);
    // An address needs no lookup (peers are named by address; only a
    // --bootstrap name is looked up, on asio's one resolver thread).
    boost::system::error_code not_literal;
    const auto literal = asio::ip::make_address(target->host, not_literal);
    if (!not_literal) {
      m_literal = asio::ip::tcp::endpoint(literal, target->port);
      return connect_next();
    }
    m_resolver.async_resolve(target->host, std::to_string(target->port),
                             [self = shared_from_this()](const boost::system::error_code& resolve_ec,
                                                         asio::ip::tcp::resolver::results_type results) {
                               if (resolve_ec)
                                 return self->fail(fmt::format("cannot resolve: {}", resolve_ec.message()));
                               self->m_endpoints.assign(results.begin(), results.end());
                               self->connect_next();
                             });
  }

  void connect_next() {
    asio::ip::tcp::endpoint endpoint;
    if (m_literal) {
      if (m_next++ > 0) return fail(m_last_error);
      endpoint = *m_literal;
    } else {
      if (m_next >= m_endpoints.size()) return fail(m_last_error.empty() ? "no address" : m_last_error);
      endpoint = m_endpoints[m_next++].endpoint();
    }
    m_stream = std::make_shared<SecureStream>(Socket(*m_transport.m_io), m_transport.m_client_context);
    m_stream->lowest_layer().async_connect(
        asio::generic::stream_protocol::endpoint(endpoint),
        [self = shared_from_this(), endpoint](const boost::system::error_code& ec) {
          if (self->m_timed_out) return self->fail("no TLS connection within 10 s");
          if (ec) {
            self->m_last_error = fmt::format("{}: {}", endpoint.address().to_string(), ec.message());
            return self->connect_next();
          }
          set_no_delay(self->m_stream->lowest_layer().native_handle());
          self->m_transport.handshake(self->m_stream, false, std::nullopt, self->m_target,
                                      [self](Result<NodeId> peer) { self->on_handshake(std::move(peer)); });
        });
  }

  void on_handshake(Result<NodeId> peer) {
    if (!peer) return answer(502, peer.error().message);
    m_transport.note_proven(m_target, *peer);
    m_response = "HTTP/1.0 200 Connection established\r\n\r\n";
    asio::async_write(m_client, asio::buffer(m_response),
                      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t /*n*/) {
                        self->m_timer.cancel();
                        if (ec || self->m_timed_out) return;
                        self->m_tunnelled = true;
                        ++self->m_transport.m_open;
                        Tunnel::start(self->m_stream, std::move(self->m_client), self->m_transport.m_write_stall_limit,
                                      [transport = &self->m_transport] { --transport->m_open; });
                      });
  }

  void fail(std::string why) { answer(502, std::move(why)); }

  // gRPC reports the status code; the reason is in our debug log.
  void answer(int code, std::string why) {
    m_timer.cancel();
    log::debug(log::Category::net, "peer connection to {} not made: {}", m_target.empty() ? "?" : m_target, why);
    const char* reason = code == 407 ? "Proxy Authentication Required" : code == 400 ? "Bad Request" : "Bad Gateway";
    m_response = fmt::format("HTTP/1.0 {} {}\r\n\r\n", code, reason);
    asio::async_write(m_client, asio::buffer(m_response),
                      [self = shared_from_this()](const boost::system::error_code& /*ec*/, std::size_t /*n*/) {
                        boost::system::error_code ignored;
                        self->m_client.close(ignored);
                      });
  }

  SecureTransport& m_transport;
  Socket m_client;
  asio::steady_timer m_timer;
  asio::ip::tcp::resolver m_resolver;
  asio::streambuf m_head;
  std::vector<asio::ip::tcp::resolver::results_type::value_type> m_endpoints;
  std::optional<asio::ip::tcp::endpoint> m_literal;
  std::size_t m_next = 0;
  std::string m_last_error;
  std::string m_target;
  std::string m_response;
  std::shared_ptr<SecureStream> m_stream;
  bool m_timed_out = false;
  bool m_tunnelled = false;
};

SecureTransport::SecureTransport(NodeCertificate self, std::optional<PoolSecret> pool,
                                 std::chrono::milliseconds write_stall_limit)
    : m_self(std::move(self)),
      m_pool(std::move(pool)),
      m_write_stall_limit(write_stall_limit),
      m_server_context(asio::ssl::context::tls_server),
      m_client_context(asio::ssl::context::tls_client) {}

Result<std::unique_ptr<SecureTransport>> SecureTransport::start(NodeCertificate self, std::optional<PoolSecret> pool,
                                                                std::chrono::milliseconds write_stall_limit) {
  std::unique_ptr<SecureTransport> transport(new SecureTransport(std::move(self), std::move(pool), write_stall_limit));
  if (auto opened = transport->open(); !opened) return opened.error();
  return transport;
}

Result<void> SecureTransport::open() {
  if (auto ok = configure_context(m_server_context.native_handle(), m_self, true); !ok) return ok.error();
  if (auto ok = configure_context(m_client_context.native_handle(), m_self, false); !ok) return ok.error();
  std::array<std::uint8_t, 16> password{};
  if (RAND_bytes(password.data(), static_cast<int>(password.size())) != 1) {
    return make_error(ErrorCode::internal, "no random bytes for the proxy password: {}", openssl_errors());
  }
  const std::string user_info = "p2pd:" + hex_of(password.data(), password.size());
  m_proxy_authorization = basic_authorization(user_info);
  m_proxy = std::make_unique<Proxy>(*m_io);
  boost::system::error_code ec;
  const asio::ip::tcp::endpoint loopback(asio::ip::address_v4::loopback(), 0);
  m_proxy->acceptor.open(loopback.protocol(), ec);
  if (!ec) m_proxy->acceptor.bind(loopback, ec);
  if (!ec) m_proxy->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return make_error(ErrorCode::io, "cannot open the loopback port for peer channels: {}", ec.message());
  m_proxy_target = fmt::format("ipv4:127.0.0.1:{}", m_proxy->acceptor.local_endpoint().port());

  // Accept the proxy's connections as generic sockets, so a tunnel carries
  // them like a socketpair's end.
  auto accept = std::make_shared<std::function<void()>>();
  *accept = [this, accept_weak = std::weak_ptr<std::function<void()>>(accept)] {
    auto client = std::make_shared<Socket>(*m_io);
    m_proxy->acceptor.async_accept(*client, [this, client, accept_weak](const boost::system::error_code& accept_ec) {
      auto again = accept_weak.lock();
      if (accept_ec == asio::error::operation_aborted || m_stopped) return;
      if (accept_ec && again) {
        // Out of descriptors, say: try again shortly rather than spin.
        auto pause = std::make_shared<asio::steady_timer>(*m_io, std::chrono::milliseconds(100));
        pause->async_wait([pause, again](const boost::system::error_code&) { (*again)(); });
        return;
      }
      if (!accept_ec) {
        if (m_proxy_sessions < Proxy::kMaxSessions) {
          ++m_proxy_sessions;
          set_no_delay(client->native_handle());
          std::make_shared<ProxySession>(*this, std::move(*client))->start();
        } else {
          boost::system::error_code ignored;
          client->close(ignored);
        }
      }
      if (again) (*again)();
    });
  };
  m_thread = std::thread([this, accept] {
    (*accept)();
    auto guard = asio::make_work_guard(*m_io);
    m_io->run();
  });
  return {};
}

SecureTransport::~SecureTransport() {
  shutdown();
}

void SecureTransport::shutdown() {
  if (m_stopped.exchange(true)) return;
  m_io->stop();
  if (m_thread.joinable()) m_thread.join();
  // Handlers never run again: dropping them (with the context) closes
  // every socket and ends every tunnel.
  m_proxy.reset();
  m_io.reset();
}

void SecureTransport::handshake(std::shared_ptr<SecureStream> stream, bool server, std::optional<NodeId> expected,
                                std::string who, std::function<void(Result<NodeId>)> then) {
  auto timer = std::make_shared<asio::steady_timer>(*m_io, kHandshakeTimeout);
  auto timed_out = std::make_shared<bool>(false);
  timer->async_wait([stream, timed_out](const boost::system::error_code& ec) {
    if (ec) return;
    *timed_out = true;
    boost::system::error_code ignored;
    stream->lowest_layer().close(ignored);
  });
  stream->async_handshake(server ? asio::ssl::stream_base::server : asio::ssl::stream_base::client,
                          [this, stream, server, expected, who = std::move(who), timer, timed_out,
                           then = std::move(then)](const boost::system::error_code& ec) {
                            timer->cancel();
                            Result<NodeId> peer = make_error(ErrorCode::unavailable, "no handshake");
                            if (*timed_out) {
                              peer = make_error(ErrorCode::timed_out, "no TLS handshake within {} s",
                                                kHandshakeTimeout.count());
                            } else if (ec) {
                              peer = make_error(ErrorCode::unavailable, "TLS handshake failed: {}", ec.message());
                            } else {
                              peer = identify_peer(stream->native_handle(), m_pool ? &*m_pool : nullptr);
                              if (peer && expected && *peer != *expected) {
                                peer = make_error(ErrorCode::permission_denied, "node {} answered, not {}",
                                                  peer->short_hex(), expected->short_hex());
                              }
                            }
                            if (peer) {
                              ++m_handshakes;
                            } else {
                              ++m_refused;
                              log_refusal(who, peer.error(), server);
                              boost::system::error_code ignored;
                              stream->lowest_layer().close(ignored);
                            }
                            then(std::move(peer));
                          });
}

void SecureTransport::log_refusal(const std::string& who, const Error& error, bool inbound) {
  // Another pool's node, or a node not in any, is worth a line: the
  // operator may have given it the wrong secret. Broken handshakes are
  // what the internet sends; they stay at debug.
  const std::string line = inbound ? fmt::format("refused a peer connection from {}: {}", who, error.message)
                                   : fmt::format("refused the peer at {}: {}", who, error.message);
  if (error.code != ErrorCode::permission_denied) {
    log::debug(log::Category::net, "{}", line);
    return;
  }
  if (const auto held_back = m_refusal_log.admit()) {
    log::warn(log::Category::net, "{}{}", line, log::held_back_note(*held_back));
  }
}

Result<SecuredConnection> SecureTransport::carry(std::shared_ptr<SecureStream> stream, const NodeId& peer,
                                                 std::optional<std::uint64_t> watched) {
  int pair[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
    boost::system::error_code ignored;
    stream->lowest_layer().close(ignored);
    return make_error(ErrorCode::io, "cannot make a socketpair: {}", std::strerror(errno));
  }
  Socket ours(*m_io);
  boost::system::error_code ec;
  ours.assign(asio::generic::stream_protocol(AF_UNIX, 0), pair[0], ec);
  if (ec) {
    ::close(pair[0]);
    ::close(pair[1]);
    boost::system::error_code ignored;
    stream->lowest_layer().close(ignored);
    return make_error(ErrorCode::io, "cannot carry a connection: {}", ec.message());
  }
  ++m_open;
  // The tunnel's handlers run only after this returns, so it cannot end
  // before its watch entry names it.
  auto tunnel = Tunnel::start(std::move(stream), std::move(ours), m_write_stall_limit, [this, watched] {
    --m_open;
    if (watched) end_watched(*watched);
  });
  if (watched) {
    if (auto it = m_watched.find(*watched); it != m_watched.end()) {
      it->second.close = [weak = std::weak_ptr<Tunnel>(tunnel)] {
        if (auto open = weak.lock()) open->close();
      };
    }
  }
  return SecuredConnection{pair[1], peer};
}

void SecureTransport::secure_inbound(int fd, std::optional<NodeId> expected, Done done, std::optional<Watch> watch) {
  secure(fd, true, expected, std::move(done), std::move(watch));
}

void SecureTransport::secure_outbound(int fd, std::optional<NodeId> expected, Done done) {
  secure(fd, false, expected, std::move(done), std::nullopt);
}

void SecureTransport::secure(int fd, bool server, std::optional<NodeId> expected, Done done,
                             std::optional<Watch> watch) {
  if (m_stopped) {
    // The watch is dropped unrun, as shutdown() drops them: its watcher is
    // going too. (Running it here, on the caller's thread, could also
    // deadlock a caller that hands over under the lock its on_ended takes.)
    ::close(fd);
    return done(make_error(ErrorCode::unavailable, "shutting down"));
  }
  asio::post(*m_io, [this, fd, server, expected, done = std::move(done), watch = std::move(watch)]() mutable {
    const int family = socket_family(fd);
    auto stream = std::make_shared<SecureStream>(Socket(*m_io), server ? m_server_context : m_client_context);
    boost::system::error_code ec;
    if (family >= 0) stream->lowest_layer().assign(asio::generic::stream_protocol(family, IPPROTO_TCP), fd, ec);
    if (family < 0 || ec) {
      ::close(fd);
      if (watch && watch->on_ended) watch->on_ended();
      return done(make_error(ErrorCode::io, "not a TCP connection"));
    }
    std::optional<std::uint64_t> watched;
    if (watch) {
      watched = watch->id;
      // Until the tunnel starts, closing the socket ends the handshake
      // (its handler then reports the end).
      auto close_socket = [weak = std::weak_ptr<SecureStream>(stream)] {
        if (auto open = weak.lock()) {
          boost::system::error_code ignored;
          open->lowest_layer().close(ignored);
        }
      };
      if (m_watched.contains(watch->id)) {
        // The caller broke its promise of unique ids: keep the first, and
        // end this one (telling its watcher) rather than lose track of either.
        log::error(log::Category::net, "a connection was handed over as {}, an id already watched", watch->id);
        stream->lowest_layer().close(ec);
        if (watch->on_ended) watch->on_ended();
        return done(make_error(ErrorCode::internal, "connection id {} already watched", watch->id));
      }
      m_watched.emplace(watch->id, Watched{std::move(close_socket), std::move(watch->on_ended)});
    }
    set_no_delay(fd);
    const std::string who = remote_of(fd);
    handshake(stream, server, expected, who,
              [this, stream, watched, done = std::move(done)](Result<NodeId> peer) mutable {
                if (!peer) {
                  if (watched) end_watched(*watched);
                  return done(peer.error());
                }
                auto carried = carry(stream, *peer, watched);
                if (!carried && watched) end_watched(*watched);
                done(std::move(carried));
              });
  });
}

void SecureTransport::close_watched(std::uint64_t id) {
  if (m_stopped) return;
  asio::post(*m_io, [this, id] {
    auto it = m_watched.find(id);
    if (it == m_watched.end()) return;  // ended already
    // A copy: closing ends the connection, whose end erases the entry.
    auto close = it->second.close;
    close();
  });
}

void SecureTransport::end_watched(std::uint64_t id) {
  auto it = m_watched.find(id);
  if (it == m_watched.end()) return;
  auto on_ended = std::move(it->second.on_ended);
  m_watched.erase(it);
  if (on_ended) on_ended();
}

void SecureTransport::note_proven(const std::string& target, const NodeId& id) {
  std::lock_guard lock(m_mutex);
  if (!m_proven.contains(target) && m_proven.size() >= kMaxProven) m_proven.erase(m_proven.begin());
  m_proven[target] = id;
}

std::optional<NodeId> SecureTransport::proven_at(const std::string& target) const {
  std::lock_guard lock(m_mutex);
  auto it = m_proven.find(target);
  if (it == m_proven.end()) return std::nullopt;
  return it->second;
}

SecureTransportStats SecureTransport::stats() const {
  return {m_handshakes.load(), m_refused.load(), m_open.load()};
}

}  // namespace p2pd::tls
