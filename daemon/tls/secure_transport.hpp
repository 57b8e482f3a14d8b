#pragma once
// Every connection between peers is TLS 1.3 with each node's own key
// (node_certificate.hpp), whichever way it was made: accepted on the peer
// port, a relay's leg, a punched socket, or dialled by a gRPC channel. gRPC
// itself speaks plaintext HTTP/2 to this layer over local sockets, because
// gRPC 1.51 cannot run TLS over a socket it did not dial and cannot be held
// to TLS 1.3 (DESIGN.md, "Security stance"):
//   - inbound: the peer port (and relay legs, punched sockets) hand each
//     socket here; after the handshake the peer's proven id is known, and
//     gRPC's server gets the other end of a socketpair;
//   - outbound, channels: gRPC dials through an in-process HTTP CONNECT
//     proxy on loopback (GRPC_ARG_HTTP_PROXY, with a per-process password
//     so other local users cannot borrow this node's identity), which
//     dials the peer, runs the handshake and carries the bytes;
//   - outbound, sockets we connected (punching): secure_outbound.
// All of it runs on one thread of its own, so bulk transfers never delay
// the node's io thread.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "common/log_limiter.hpp"
#include "common/node_id.hpp"
#include "common/result.hpp"
#include "daemon/tls/node_certificate.hpp"
#include "daemon/tls/pool_secret.hpp"
#include "daemon/tls/tunnel.hpp"

namespace p2pd::tls {

// A connection through the handshake: `fd` is the plaintext end for gRPC
// (non-blocking; whoever gets it owns it), `peer` the id its key proves.
struct SecuredConnection {
  int fd = -1;
  NodeId peer;
};

struct SecureTransportStats {
  std::uint64_t handshakes = 0;  // completed, all directions
  std::uint64_t refused = 0;     // handshakes that failed or proved the wrong peer or pool
  std::uint64_t open = 0;        // connections carried now
};

class SecureTransport {
 public:
  using Done = std::function<void(Result<SecuredConnection>)>;
  static constexpr std::chrono::seconds kHandshakeTimeout{10};
  // A connection where a write (up to 16 KiB) to either side has not
  // completed in this long is ended (tunnel.hpp). Long enough for a peer paused by its scheduler or
  // a congested link; a peer that stops reading for good lets go of it.
  static constexpr std::chrono::milliseconds kWriteStallLimit{std::chrono::minutes(2)};

  // `pool`: with it, only peers proving the same secret are let in or
  // called, both ways.
  static Result<std::unique_ptr<SecureTransport>> start(NodeCertificate self, std::optional<PoolSecret> pool,
                                                        std::chrono::milliseconds write_stall_limit = kWriteStallLimit);
  ~SecureTransport();
  SecureTransport(const SecureTransport&) = delete;
  SecureTransport& operator=(const SecureTransport&) = delete;

  [[nodiscard]] const NodeId& self() const { return m_self.id(); }

  // A connection its caller wants to close later and hear the end of:
  // `id` is the caller's name for it, unique among the watched ones (a
  // second connection handed over with an id in use is refused, and its
  // end told); `on_ended` runs once, on this layer's thread, when it ends:
  // handshake refused, tunnel closed by either side, or close_watched().
  // Not at shutdown(), which drops it unrun.
  struct Watch {
    std::uint64_t id = 0;
    std::function<void()> on_ended;
  };

  // TLS server side of `fd` (connected; ownership passes here), a socket a
  // peer opened to us; with `expected`, a peer proving another id is
  // refused. `done` runs once, on this layer's thread (on the caller's,
  // at once, once shutdown() has begun). Not to be called while
  // shutdown() runs.
  void secure_inbound(int fd, std::optional<NodeId> expected, Done done, std::optional<Watch> watch = std::nullopt);
  // Ends the watched connection `id`, in its handshake or its tunnel, on
  // this layer's thread: its descriptors are closed there, by the thread
  // that owns them. Nothing if it has ended. Calls are handled in the
  // order made, after every secure_inbound() made before them. Any
  // thread; not while shutdown() runs.
  void close_watched(std::uint64_t id);
  // TLS client side of `fd`, a socket we connected ourselves. With
  // `expected`, a peer proving another id is refused.
  void secure_outbound(int fd, std::optional<NodeId> expected, Done done);

  // Where gRPC channels to peers dial ("ipv4:127.0.0.1:PORT"), and the
  // Proxy-Authorization value their CONNECT must carry
  // (net/secure_channel.hpp).
  [[nodiscard]] const std::string& proxy_target() const { return m_proxy_target; }
  [[nodiscard]] const std::string& proxy_authorization() const { return m_proxy_authorization; }
  // The id the newest connection the proxy made to `target` (host:port as
  // the channel names it) proved; nullopt when it made none.
  [[nodiscard]] std::optional<NodeId> proven_at(const std::string& target) const;

  [[nodiscard]] SecureTransportStats stats() const;

  // Ends every connection and joins the thread. Idempotent.
  void shutdown();

 private:
  class ProxySession;
  struct Proxy;
  SecureTransport(NodeCertificate self, std::optional<PoolSecret> pool, std::chrono::milliseconds write_stall_limit);
  Result<void> open();
  // Either side of secure_inbound/secure_outbound.
  void secure(int fd, bool server, std::optional<NodeId> expected, Done done, std::optional<Watch> watch);
  // A watched connection has ended: forget it and tell its watcher.
  void end_watched(std::uint64_t id);
  // Runs the handshake on an adopted socket, then checks the peer.
  void handshake(std::shared_ptr<SecureStream> stream, bool server, std::optional<NodeId> expected, std::string who,
                 std::function<void(Result<NodeId>)> then);
  // Starts the tunnel; a watched connection is then closed by closing it,
  // and ends when it does (not when this fails).
  Result<SecuredConnection> carry(std::shared_ptr<SecureStream> stream, const NodeId& peer,
                                  std::optional<std::uint64_t> watched);
  void note_proven(const std::string& target, const NodeId& id);
  void log_refusal(const std::string& who, const Error& error, bool inbound);

  NodeCertificate m_self;
  std::optional<PoolSecret> m_pool;
  std::chrono::milliseconds m_write_stall_limit;
  boost::asio::ssl::context m_server_context;
  boost::asio::ssl::context m_client_context;
  // Declared before the io context: handlers it drops at shutdown count down.
  std::atomic<std::uint64_t> m_handshakes{0};
  std::atomic<std::uint64_t> m_refused{0};
  std::atomic<std::uint64_t> m_open{0};
  std::size_t m_proxy_sessions = 0;  // the thread's own
  // Watched connections (the thread's own): how to end each now, and whom
  // to tell when it has ended.
  struct Watched {
    std::function<void()> close;
    std::function<void()> on_ended;
  };
  std::unordered_map<std::uint64_t, Watched> m_watched;
  std::unique_ptr<boost::asio::io_context> m_io = std::make_unique<boost::asio::io_context>();
  std::unique_ptr<Proxy> m_proxy;
  std::string m_proxy_target;
  std::string m_proxy_authorization;
  std::thread m_thread;
  std::atomic<bool> m_stopped{false};

  mutable std::mutex m_mutex;
  std::map<std::string, NodeId> m_proven;  // target -> id, at most kMaxProven
  static constexpr std::size_t kMaxProven = 4096;
  log::Limiter m_refusal_log{5, std::chrono::minutes(1)};
};

}  // namespace p2pd::tls
