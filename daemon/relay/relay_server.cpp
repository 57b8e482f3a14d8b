#include "daemon/relay/relay_server.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>
#include <boost/asio.hpp>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>

#include "common/log.hpp"
#include "common/token_bucket.hpp"

namespace p2pd::relay {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// One read or write of a circuit: large enough for gRPC's frames, small
// enough that 64 circuits cost 8 MiB at most.
constexpr std::size_t kChunkBytes = 64 << 10;

Secret random_secret() {
  Secret secret{};
  if (RAND_bytes(secret.data(), static_cast<int>(secret.size())) != 1) {
    // Never expected; a predictable secret would let anyone take over a
    // reservation, so refuse rather than go on.
    throw std::runtime_error("RAND_bytes failed");
  }
  return secret;
}

bool same_secret(const Secret& a, const std::array<std::uint8_t, kSecretBytes>& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

struct RelayServer::State {
  struct Allocation;

  // A connection that has not yet said what it is.
  struct Handshake {
    tcp::socket socket;
    asio::steady_timer timer;
    std::array<std::uint8_t, kMagicBytes> magic{};
    std::array<std::uint8_t, kSecretBytes> secret{};
    explicit Handshake(tcp::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}
  };

  // A caller waiting for the reserving node's leg.
  struct Waiting {
    std::shared_ptr<Handshake> caller;
  };

  // Two sockets joined byte for byte.
  struct Circuit : std::enable_shared_from_this<Circuit> {
    State& state;
    tcp::socket caller;
    tcp::socket leg;
    std::array<std::uint8_t, kMagicBytes> prefix{};
    std::array<std::uint8_t, kChunkBytes> to_leg{};
    std::array<std::uint8_t, kChunkBytes> to_caller{};
    asio::steady_timer caller_wait;
    asio::steady_timer leg_wait;
    bool closed = false;
    Circuit(State& s, tcp::socket c, tcp::socket l)
        : state(s),
          caller(std::move(c)),
          leg(std::move(l)),
          caller_wait(caller.get_executor()),
          leg_wait(caller.get_executor()) {}
  };

  struct Allocation : std::enable_shared_from_this<Allocation> {
    NodeId node;
    std::string owner_ip;  // where the reservation was asked from
    HostPort addr;
    Secret secret{};
    tcp::acceptor acceptor;
    asio::steady_timer accept_retry;
    std::shared_ptr<tcp::socket> control;
    asio::steady_timer expiry;     // no control connection: the allocation goes
    asio::steady_timer keepalive;  // ours out, theirs checked
    Clock::time_point heard{};
    std::deque<std::array<std::uint8_t, 1 + kSecretBytes>> writes;
    bool writing = false;
    std::array<std::uint8_t, 1> control_in{};
    std::map<std::array<std::uint8_t, kSecretBytes>, Waiting> waiting;
    bool closed = false;
    Allocation(asio::io_context& io) : acceptor(io), accept_retry(io), expiry(io), keepalive(io) {}
  };

  State(std::string host, RelayLimits l)
      : bind_host(std::move(host)), limits(l), bucket(l.max_rate_bytes_per_s, burst_for(l), Clock::now()) {}

  static std::uint64_t burst_for(const RelayLimits& l) {
    // A quarter second's worth, and at least one chunk so a read is never starved.
    return std::max<std::uint64_t>(l.max_rate_bytes_per_s / 4, kChunkBytes);
  }

  void reserve(const NodeId& node, const std::string& requester_ip, const std::string& public_host,
               std::function<void(Result<RelayAllocation>)> done);
  void accept(const std::shared_ptr<Allocation>& alloc);
  void handshake(const std::shared_ptr<Allocation>& alloc, tcp::socket socket);
  void on_magic(const std::shared_ptr<Allocation>& alloc, const std::shared_ptr<Handshake>& hs);
  void attach_control(const std::shared_ptr<Allocation>& alloc, const std::shared_ptr<Handshake>& hs);
  void read_control(const std::shared_ptr<Allocation>& alloc, const std::shared_ptr<tcp::socket>& control);
  void keepalive(const std::shared_ptr<Allocation>& alloc, const std::shared_ptr<tcp::socket>& control);
  void send_frame(const std::shared_ptr<Allocation>& alloc, std::array<std::uint8_t, 1 + kSecretBytes> frame);
  void flush(const std::shared_ptr<Allocation>& alloc);
  void drop_control(const std::shared_ptr<Allocation>& alloc, std::string_view why);
  void arm_expiry(const std::shared_ptr<Allocation>& alloc, Clock::duration after);
  void close_allocation(const std::shared_ptr<Allocation>& alloc);
  void on_caller(const std::shared_ptr<Allocation>& alloc, const std::shared_ptr<Handshake>& hs);
  void on_leg(const std::shared_ptr<Allocation>& alloc, const std::shared_ptr<Handshake>& hs);
  void pump(const std::shared_ptr<Circuit>& circuit, bool toward_leg);
  void close_circuit(const std::shared_ptr<Circuit>& circuit);
  void close_all();

  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::string bind_host;
  RelayLimits limits;
  TokenBucket bucket;
  std::map<NodeId, std::shared_ptr<Allocation>> allocations;
  std::size_t handshakes = 0;
  std::map<Handshake*, std::weak_ptr<Handshake>> open_handshakes;  // closed at shutdown
  std::map<Circuit*, std::weak_ptr<Circuit>> circuits;
  std::atomic<std::size_t> reservation_count{0};
  std::atomic<std::size_t> circuit_count{0};  // joined and waiting callers
  std::atomic<std::uint64_t> bytes_relayed{0};
  std::atomic<std::uint64_t> circuits_refused{0};
};

RelayServer::RelayServer(std::string bind_host, RelayLimits limits)
    : m_limits(limits), m_state(std::make_unique<State>(std::move(bind_host), limits)) {
  m_thread = std::thread([state = m_state.get()] { state->io.run(); });
}

RelayServer::~RelayServer() {
  shutdown();
}

void RelayServer::shutdown() {
  if (!m_thread.joinable()) return;
  asio::post(m_state->io, [state = m_state.get()] {
    state->close_all();
    state->work.reset();
  });
  m_thread.join();
}

void RelayServer::reserve(const NodeId& node, const std::string& requester_ip, const std::string& public_host,
                          std::function<void(Result<RelayAllocation>)> done) {
  if (!m_thread.joinable()) {
    done(make_error(ErrorCode::unavailable, "the relay is shut down"));
    return;
  }
  asio::post(m_state->io, [state = m_state.get(), node, requester_ip, public_host, done = std::move(done)]() mutable {
    state->reserve(node, requester_ip, public_host, std::move(done));
  });
}

RelayServerStats RelayServer::stats() const {
  return RelayServerStats{m_state->reservation_count.load(), m_state->circuit_count.load(),
                          m_state->bytes_relayed.load(), m_state->circuits_refused.load()};
}

void RelayServer::State::reserve(const NodeId& node, const std::string& requester_ip, const std::string& public_host,
                                 std::function<void(Result<RelayAllocation>)> done) {
  if (auto it = allocations.find(node); it != allocations.end()) {
    // The node is back (its control connection broke, or it restarted):
    // same port, new secret, and the old control connection goes. Node ids
    // are public, so only a request from the address that reserved may do
    // that, or anyone could take a node's callers.
    auto alloc = it->second;
    if (alloc->owner_ip != requester_ip) {
      done(make_error(ErrorCode::permission_denied, "node {} holds a reservation here, asked from another address",
                      node.short_hex()));
      return;
    }
    alloc->secret = random_secret();
    if (alloc->control) drop_control(alloc, "the node reserved again");
    arm_expiry(alloc, kHandshakeTimeout * 3);
    done(RelayAllocation{HostPort{public_host, alloc->addr.port}, alloc->secret});
    return;
  }
  if (allocations.size() >= limits.max_reservations) {
    done(make_error(ErrorCode::unavailable, "this relay holds its limit of {} reservations", limits.max_reservations));
    return;
  }
  auto alloc = std::make_shared<Allocation>(io);
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(bind_host, ec);
  if (ec) {
    done(make_error(ErrorCode::internal, "relay bind address {}: {}", bind_host, ec.message()));
    return;
  }
  const tcp::endpoint endpoint(address, 0);
  alloc->acceptor.open(endpoint.protocol(), ec);
  if (!ec) alloc->acceptor.bind(endpoint, ec);
  if (!ec) alloc->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    done(make_error(ErrorCode::unavailable, "cannot open a relay port on {}: {}", bind_host, ec.message()));
    return;
  }
  alloc->node = node;
  alloc->owner_ip = requester_ip;
  alloc->secret = random_secret();
  alloc->addr = HostPort{public_host, alloc->acceptor.local_endpoint().port()};
  allocations.emplace(node, alloc);
  reservation_count = allocations.size();
  log::info(log::Category::net, "relay: reserved port {} for {}", alloc->addr.port, node.short_hex());
  // The node must connect its control connection soon, or the port goes.
  arm_expiry(alloc, kHandshakeTimeout * 3);
  accept(alloc);
  done(RelayAllocation{alloc->addr, alloc->secret});
}

void RelayServer::State::arm_expiry(const std::shared_ptr<Allocation>& alloc, Clock::duration after) {
  alloc->expiry.expires_after(after);
  alloc->expiry.async_wait([this, weak = std::weak_ptr<Allocation>(alloc)](const boost::system::error_code& ec) {
    auto expired = weak.lock();
    if (ec || !expired || expired->closed || expired->control) return;
    log::info(log::Category::net, "relay: reservation of {} expired", expired->node.short_hex());
    close_allocation(expired);
  });
}

void RelayServer::State::close_allocation(const std::shared_ptr<Allocation>& alloc) {
  if (alloc->closed) return;
  alloc->closed = true;
  boost::system::error_code ignored;
  alloc->acceptor.close(ignored);
  alloc->accept_retry.cancel();
  alloc->expiry.cancel();
  alloc->keepalive.cancel();
  if (alloc->control) alloc->control->close(ignored);
  alloc->control.reset();
  for (auto& [token, waiting] : alloc->waiting) {
    waiting.caller->socket.close(ignored);
    waiting.caller->timer.cancel();
    --circuit_count;
  }
  alloc->waiting.clear();
  if (auto it = allocations.find(alloc->node); it != allocations.end() && it->second == alloc) allocations.erase(it);
  reservation_count = allocations.size();
}

void RelayServer::State::accept(const std::shared_ptr<Allocation>& alloc) {
  alloc->acceptor.async_accept([this, alloc](const boost::system::error_code& ec, tcp::socket socket) {
    if (alloc->closed) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      // Out of descriptors, or a reset before accept: try again shortly
      // (at once would spin while descriptors stay short).
      log::debug(log::Category::net, "relay: accept on port {}: {}", alloc->addr.port, ec.message());
      alloc->accept_retry.expires_after(std::chrono::milliseconds(100));
      alloc->accept_retry.async_wait([this, alloc](const boost::system::error_code& wait_ec) {
        if (!wait_ec && !alloc->closed) accept(alloc);
      });
      return;
    }
    // Connections that have not said what they are are bounded too, or
    // idle sockets could exhaust the node's descriptors.
    if (handshakes >= limits.max_circuits + 2 * limits.max_reservations + 8) {
      ++circuits_refused;
      boost::system::error_code ignored;
      socket.close(ignored);
    } else {
      handshake(alloc, std::move(socket));
    }
    accept(alloc);
  });
}

void RelayServer::State::handshake(const std::shared_ptr<Allocation>& alloc, tcp::socket socket) {
  auto hs = std::make_shared<Handshake>(std::move(socket));
  ++handshakes;
  std::erase_if(open_handshakes, [](const auto& entry) { return entry.second.expired(); });
  open_handshakes.emplace(hs.get(), hs);
  hs->timer.expires_after(kHandshakeTimeout);
  hs->timer.async_wait([hs](const boost::system::error_code& ec) {
    if (ec) return;
    boost::system::error_code ignored;
    hs->socket.close(ignored);
  });
  asio::async_read(hs->socket, asio::buffer(hs->magic),
                   [this, alloc, hs](const boost::system::error_code& ec, std::size_t) {
                     --handshakes;
                     if (ec || alloc->closed) {
                       hs->timer.cancel();
                       return;
                     }
                     on_magic(alloc, hs);
                   });
}

void RelayServer::State::on_magic(const std::shared_ptr<Allocation>& alloc, const std::shared_ptr<Handshake>& hs) {
  const std::string_view magic(reinterpret_cast<const char*>(hs->magic.data()), hs->magic.size());
  if (magic != kControlMagic && magic != kLegMagic) {
    hs->timer.cancel();
    on_caller(alloc, hs);
    return;
  }
  ++handshakes;
  asio::async_read(
      hs->socket, asio::buffer(hs->secret),
      [this, alloc, hs, control = magic == kControlMagic](const boost::system::error_code& ec, std::size_t) {
        --handshakes;
        hs->timer.cancel();
        if (ec || alloc->closed) return;
        if (control) {
          attach_control(alloc, hs);
        } else {
          on_leg(alloc, hs);
        }
      });
}

void RelayServer::State::attach_control(const std::shared_ptr<Allocation>& alloc,
                                        const std::shared_ptr<Handshake>& hs) {
  boost::system::error_code ignored;
  if (!same_secret(alloc->secret, hs->secret)) {
    log::warn(log::Category::net, "relay: a control connection for {} had the wrong secret; closed",
              alloc->node.short_hex());
    hs->socket.close(ignored);
    return;
  }
  if (alloc->control) drop_control(alloc, "replaced by a new one");
  alloc->control = std::make_shared<tcp::socket>(std::move(hs->socket));
  alloc->control->set_option(tcp::no_delay(true), ignored);
  alloc->control->set_option(asio::socket_base::keep_alive(true), ignored);
  alloc->heard = Clock::now();
  alloc->expiry.cancel();
  log::info(log::Category::net, "relay: {} connected to its reservation (port {})", alloc->node.short_hex(),
            alloc->addr.port);
  read_control(alloc, alloc->control);
  keepalive(alloc, alloc->control);
}

void RelayServer::State::read_control(const std::shared_ptr<Allocation>& alloc,
                                      const std::shared_ptr<tcp::socket>& control) {
  asio::async_read(*control, asio::buffer(alloc->control_in),
                   [this, alloc, control](const boost::system::error_code& ec, std::size_t) {
                     if (alloc->control != control) return;  // replaced or dropped
                     if (ec) {
                       drop_control(alloc, ec == asio::error::eof ? "closed by the node" : ec.message());
                       return;
                     }
                     if (alloc->control_in[0] != kFrameKeepalive) {
                       drop_control(alloc, "unknown frame");
                       return;
                     }
                     alloc->heard = Clock::now();
                     read_control(alloc, control);
                   });
}

void RelayServer::State::keepalive(const std::shared_ptr<Allocation>& alloc,
                                   const std::shared_ptr<tcp::socket>& control) {
  alloc->keepalive.expires_after(kKeepaliveInterval);
  alloc->keepalive.async_wait([this, alloc, control](const boost::system::error_code& ec) {
    if (ec || alloc->control != control) return;
    if (Clock::now() - alloc->heard > kControlSilence) {
      drop_control(alloc, "silent");
      return;
    }
    // A node that does not read its control connection gets no more than
    // one frame queued this way.
    if (!alloc->writing) {
      std::array<std::uint8_t, 1 + kSecretBytes> frame{};
      frame[0] = kFrameKeepalive;
      send_frame(alloc, frame);
    }
    keepalive(alloc, control);
  });
}

void RelayServer::State::send_frame(const std::shared_ptr<Allocation>& alloc,
                                    std::array<std::uint8_t, 1 + kSecretBytes> frame) {
  alloc->writes.push_back(frame);
  flush(alloc);
}

void RelayServer::State::flush(const std::shared_ptr<Allocation>& alloc) {
  if (alloc->writing || alloc->writes.empty() || !alloc->control) return;
  alloc->writing = true;
  const std::size_t size = alloc->writes.front()[0] == kFrameCaller ? 1 + kSecretBytes : 1;
  auto control = alloc->control;
  asio::async_write(*control, asio::buffer(alloc->writes.front().data(), size),
                    [this, alloc, control](const boost::system::error_code& ec, std::size_t) {
                      // A write of a replaced connection must not touch the
                      // queue: drop_control cleared it, and the new
                      // connection's write may be in flight.
                      if (alloc->control != control) return;
                      alloc->writing = false;
                      if (ec) {
                        drop_control(alloc, ec.message());
                        return;
                      }
                      alloc->writes.pop_front();
                      flush(alloc);
                    });
}

void RelayServer::State::drop_control(const std::shared_ptr<Allocation>& alloc, std::string_view why) {
  if (!alloc->control) return;
  log::info(log::Category::net, "relay: control connection of {} dropped ({}); its port is kept for {} s",
            alloc->node.short_hex(), why, kAllocationGrace.count());
  boost::system::error_code ignored;
  alloc->control->close(ignored);
  alloc->control.reset();
  alloc->keepalive.cancel();
  alloc->writes.clear();
  alloc->writing = false;
  // Callers waiting for a leg will not get one.
  for (auto& [token, waiting] : alloc->waiting) {
    waiting.caller->socket.close(ignored);
    waiting.caller->timer.cancel();
    --circuit_count;
  }
  alloc->waiting.clear();
  arm_expiry(alloc, kAllocationGrace);
}

void RelayServer::State::on_caller(const std::shared_ptr<Allocation>& alloc, const std::shared_ptr<Handshake>& hs) {
  boost::system::error_code ignored;
  if (!alloc->control) {
    hs->socket.close(ignored);  // the node is not connected: nobody to join
    return;
  }
  if (circuit_count >= limits.max_circuits) {
    ++circuits_refused;
    log::debug(log::Category::net, "relay: refused a caller for {}: {} circuits open (--relay-max-circuits)",
               alloc->node.short_hex(), circuit_count.load());
    hs->socket.close(ignored);
    return;
  }
  ++circuit_count;
  const Secret token = random_secret();
  alloc->waiting.emplace(token, Waiting{hs});
  hs->timer.expires_after(kHandshakeTimeout);
  hs->timer.async_wait([this, alloc, token](const boost::system::error_code& ec) {
    if (ec) return;
    auto it = alloc->waiting.find(token);
    if (it == alloc->waiting.end()) return;
    boost::system::error_code close_ignored;
    it->second.caller->socket.close(close_ignored);
    alloc->waiting.erase(it);
    --circuit_count;
  });
  std::array<std::uint8_t, 1 + kSecretBytes> frame{};
  frame[0] = kFrameCaller;
  std::memcpy(frame.data() + 1, token.data(), token.size());
  send_frame(alloc, frame);
}

void RelayServer::State::on_leg(const std::shared_ptr<Allocation>& alloc, const std::shared_ptr<Handshake>& hs) {
  boost::system::error_code ignored;
  auto it = alloc->waiting.find(hs->secret);
  if (it == alloc->waiting.end()) {
    hs->socket.close(ignored);  // no such caller (or it gave up)
    return;
  }
  auto caller = it->second.caller;
  alloc->waiting.erase(it);
  caller->timer.cancel();
  auto circuit = std::make_shared<Circuit>(*this, std::move(caller->socket), std::move(hs->socket));
  circuit->prefix = caller->magic;
  circuit->caller.set_option(tcp::no_delay(true), ignored);
  circuit->leg.set_option(tcp::no_delay(true), ignored);
  circuits.emplace(circuit.get(), circuit);
  // The caller's first bytes were read to tell it from a leg: they go first.
  asio::async_write(circuit->leg, asio::buffer(circuit->prefix),
                    [this, circuit](const boost::system::error_code& ec, std::size_t) {
                      if (ec) {
                        close_circuit(circuit);
                        return;
                      }
                      pump(circuit, true);
                      pump(circuit, false);
                    });
}

void RelayServer::State::pump(const std::shared_ptr<Circuit>& circuit, bool toward_leg) {
  if (circuit->closed) return;
  tcp::socket& from = toward_leg ? circuit->caller : circuit->leg;
  auto& buffer = toward_leg ? circuit->to_leg : circuit->to_caller;
  const std::size_t granted = bucket.take(buffer.size(), Clock::now());
  if (granted == 0) {
    // Over --relay-max-rate: wait for the bucket to refill.
    auto& timer = toward_leg ? circuit->caller_wait : circuit->leg_wait;
    timer.expires_after(bucket.wait_time(Clock::now()));
    timer.async_wait([this, circuit, toward_leg](const boost::system::error_code& ec) {
      if (!ec) pump(circuit, toward_leg);
    });
    return;
  }
  from.async_read_some(asio::buffer(buffer.data(), granted), [this, circuit, toward_leg, granted](
                                                                 const boost::system::error_code& ec, std::size_t n) {
    bucket.refund(granted - n);
    if (ec || circuit->closed) {
      close_circuit(circuit);
      return;
    }
    bytes_relayed += n;
    tcp::socket& to = toward_leg ? circuit->leg : circuit->caller;
    auto& data = toward_leg ? circuit->to_leg : circuit->to_caller;
    asio::async_write(to, asio::buffer(data.data(), n),
                      [this, circuit, toward_leg](const boost::system::error_code& write_ec, std::size_t) {
                        if (write_ec) {
                          close_circuit(circuit);
                          return;
                        }
                        pump(circuit, toward_leg);
                      });
  });
}

void RelayServer::State::close_circuit(const std::shared_ptr<Circuit>& circuit) {
  if (circuit->closed) return;
  circuit->closed = true;
  boost::system::error_code ignored;
  circuit->caller.close(ignored);
  circuit->leg.close(ignored);
  circuit->caller_wait.cancel();
  circuit->leg_wait.cancel();
  circuits.erase(circuit.get());
  --circuit_count;
}

void RelayServer::State::close_all() {
  const auto all = allocations;
  for (const auto& [node, alloc] : all) close_allocation(alloc);
  const auto open = circuits;
  for (const auto& [raw, weak] : open) {
    if (auto circuit = weak.lock()) close_circuit(circuit);
  }
  // Connections that never said what they are: their timers would keep the
  // thread up for another 10 s.
  for (const auto& [raw, weak] : open_handshakes) {
    if (auto hs = weak.lock()) {
      boost::system::error_code ignored;
      hs->socket.close(ignored);
      hs->timer.cancel();
    }
  }
  open_handshakes.clear();
}

}  // namespace p2pd::relay
