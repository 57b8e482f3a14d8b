#include "daemon/node/node.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <future>

#include <boost/asio/post.hpp>

#include "common/log.hpp"
#include "common/version.hpp"
#include "daemon/control/control_server.hpp"
#include "daemon/net/peer_server.hpp"

namespace p2pd::node {

Node::Node(NodeConfig config, std::vector<std::string> args, NodeIdentity identity, exec::ExecutorInfo executor)
    : m_config(std::move(config)),
      m_args(std::move(args)),
      m_identity(std::move(identity)),
      m_executor(std::move(executor)),
      m_started(std::chrono::steady_clock::now()),
      m_work(boost::asio::make_work_guard(m_io)),
      m_tick_timer(m_io),
      m_signals(m_io, SIGTERM, SIGINT, SIGHUP),
      m_bootstrap(m_config.bootstrap, m_identity.id) {}

Node::~Node() {
  shutdown();
}

Result<void> Node::start() {
  // Raft's durable state first: a damaged state dir stops start-up before
  // anything is bound.
  if (auto raft = start_raft(); !raft) return raft.error();
  if (auto store = start_store(); !store) return store.error();
  if (auto traced = start_trace(); !traced) return traced.error();
  // The control socket first, before any thread of ours exists: binding it
  // needs a process-wide umask for an instant (see ControlServer::start).
  // Calls that arrive before the io thread runs wait in its queue.
  auto control = control::ControlServer::start(m_config.control_socket, *this);
  if (!control) return control.error();
  m_control_server = std::move(*control);

  if (auto secured = start_transport(); !secured) return secured.error();
  auto peer = net::PeerServer::start(
      m_config.listen, *m_transport, std::string(exec::to_string(m_executor.kind)), *this, *this, *this, *this, *this,
      net::ConnectionCaps{m_config.max_connections_per_ip, net::kMaxPeerConnections},
      net::CallRateRules{m_config.peer_call_rate}, m_tracer.get(), m_trace_recorder.get());
  if (!peer) return peer.error();
  m_peer_server = std::move(*peer);
  m_listen = m_peer_server->bound();
  m_peer_client = std::make_unique<net::PeerClient>(
      m_identity.id, [this](std::function<void()> fn) { boost::asio::post(m_io, std::move(fn)); }, *m_transport,
      m_tracer.get());
  // Before the io thread runs, so peer calls queued meanwhile find the overlay.
  start_chord();
  start_port_mapping();
  start_nat();
  start_relay();
  m_transfer = std::make_unique<BlobTransfer>(
      m_identity.id, *m_blob_store, *m_matrix_cache, *m_peer_client, m_io, m_blocking,
      [this](const NodeId& key, std::function<void(Result<std::vector<chord::Peer>>)> done) {
        locate(key, std::move(done));
      });
  start_worker();

  wait_for_signal();
  schedule_tick();
  m_io_thread = std::thread([this] { m_io.run(); });
  return {};
}

Result<void> Node::start_transport() {
  std::optional<tls::PoolSecret> pool;
  if (!m_config.pool_secret_file.empty()) {
    auto loaded = tls::PoolSecret::load(m_config.pool_secret_file);
    if (!loaded) return loaded.error();
    pool = std::move(*loaded);
  }
  auto certificate = tls::NodeCertificate::create(m_identity.private_key_pem, pool ? &*pool : nullptr);
  if (!certificate) return certificate.error();
  if (certificate->id() != m_identity.id) {
    return make_error(ErrorCode::internal, "the node certificate names {}, the key {}", certificate->id().hex(),
                      m_identity.id.hex());
  }
  const bool closed = pool.has_value();
  auto transport = tls::SecureTransport::start(std::move(*certificate), std::move(pool));
  if (!transport) return transport.error();
  m_transport = std::move(*transport);
  if (closed) {
    log::info(log::Category::net, "closed pool: peers must prove the secret in {}", m_config.pool_secret_file.string());
  }
  return {};
}

void Node::wait_until_stop_requested() {
  std::unique_lock lock(m_stop_mutex);
  m_stop_cv.wait(lock, [this] { return m_stop_requested; });
}

void Node::request_stop() {
  {
    std::lock_guard lock(m_stop_mutex);
    m_stop_requested = true;
  }
  m_stop_cv.notify_all();
}

void Node::shutdown() {
  if (m_shut_down) return;
  m_shut_down = true;
  // A start() that failed half-way may have the control socket up and calls
  // queued for an io thread that never ran: run it now, or they would never
  // be answered and the server's shutdown would wait for them.
  if (!m_io_thread.joinable()) m_io_thread = std::thread([this] { m_io.run(); });
  // Job calls waiting on the pool (a commit, a transfer) are answered now,
  // or the control server's shutdown would wait for them.
  {
    std::promise<void> answered;
    boost::asio::post(m_io, [this, &answered] {
      fail_job_calls(make_error(ErrorCode::unavailable, "p2pd is shutting down"));
      // No relay leg is handed to the peer server from now on: it is shut
      // down next, from this thread.
      m_relay_stopped = true;
      if (m_relay_link) m_relay_link->close();
      m_punch_responses.clear();
      for (auto& [ticket, offer_done] : m_punch_preparing) {
        offer_done(make_error(ErrorCode::unavailable, "p2pd is shutting down"));
      }
      m_punch_preparing.clear();
      for (auto& waiter : m_punch_waiters) waiter.done(make_error(ErrorCode::unavailable, "p2pd is shutting down"));
      m_punch_waiters.clear();
      answered.set_value();
    });
    answered.get_future().wait();
  }
  // Servers first, while the io thread still runs: calls in flight are
  // answered by it, and gRPC's Shutdown waits for them.
  if (m_control_server) {
    m_control_server->shutdown(kShutdownGrace);
    m_control_server.reset();
  }
  // Outbound calls are cancelled and their callbacks awaited before the io
  // context they post into goes away.
  if (m_peer_client) m_peer_client->shutdown();
  // The object itself stays until the io thread is gone: code there still
  // tells it this node's reachability.
  if (m_peer_server) m_peer_server->shutdown(kShutdownGrace);
  if (m_io_thread.joinable()) {
    // A tick or signal handler may already be queued when its timer or set
    // is cancelled; it runs with success and would re-arm. m_stopping stops
    // that, and io.stop() ends the run even if something else is queued.
    boost::asio::post(m_io, [this] {
      m_stopping = true;
      m_tick_timer.cancel();
      boost::system::error_code ignored;
      m_signals.cancel(ignored);
      m_stun_socket.close(ignored);
      m_work.reset();
      m_io.stop();
    });
    m_io_thread.join();
  }
  // No handshake finishes from here, so nothing reaches the server or the
  // client any more; open connections end.
  if (m_transport) m_transport->shutdown();
  m_peer_server.reset();
  // Peers relayed through us are cut off; they reserve elsewhere.
  if (m_relay_server) m_relay_server->shutdown();
  m_relay_link.reset();
  // What is on the router comes off it.
  stop_port_mapping();
  // A kernel or a disk write still running finishes; queued ones are dropped.
  m_compute.stop();
  m_verify_pool.stop();
  m_blocking.stop();
  m_compute.join();
  m_verify_pool.join();
  m_blocking.join();
}

void Node::schedule_tick() {
  if (m_stopping) return;
  m_tick_timer.expires_after(kTickInterval);
  m_tick_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || m_stopping) return;  // cancelled at shutdown
    on_tick();
    schedule_tick();
  });
}

void Node::on_tick() {
  ++m_ticks;
  // Protocol cores (Chord, Raft, scheduler, NAT) are ticked here, and their
  // outputs drained: persist first, then send, then apply.
  if (m_overlay) {
    m_overlay->tick();
    pump_chord();
  }
  tick_raft();
  tick_jobs();
  probe_bootstrap_peers();
  tick_port_mapping();
  tick_nat();
  tick_relay();
  tick_punch();
  maybe_join();
  check_leave_done();
  update_service();
}

void Node::update_service() {
  m_service.tick(std::chrono::steady_clock::now());
  if (m_leaving) return;  // STOPPING=1 was sent
  // Ready once p2pctl is served (the control server started before the
  // first tick) and the node is in a pool: it started one, or its join
  // through a bootstrap peer has completed.
  const bool member = m_overlay && m_overlay->ring().is_member();
  if (member && !m_service.is_ready()) {
    m_service.ready(service_status());
  } else if (m_ticks % kServiceStatusTicks == 0) {
    m_service.status(service_status());
  }
}

std::string Node::service_status() const {
  if (!m_overlay || !m_overlay->ring().is_member()) {
    std::string peers;
    for (const auto& addr : m_config.bootstrap) peers += (peers.empty() ? "" : ", ") + addr.to_string();
    return m_ring_started ? "joining the ring through a bootstrap peer"
                          : fmt::format("waiting for a bootstrap peer to answer ({})", peers);
  }
  const std::size_t peers = peers_heard_lately();
  std::string raft = "no Raft leader known";
  if (m_raft && m_raft->leader()) {
    raft = *m_raft->leader() == m_identity.id
               ? fmt::format("Raft leader (term {})", m_raft->term())
               : fmt::format("leader {} (term {})", m_raft->leader()->short_hex(), m_raft->term());
  }
  return fmt::format("in a pool with {} peer{}; {}; {} shard{} running here", peers, peers == 1 ? "" : "s", raft,
                     m_shard_runs.size(), m_shard_runs.size() == 1 ? "" : "s");
}

void Node::probe_bootstrap_peers() {
  for (const auto& addr : m_bootstrap.due(m_ticks)) {
    log::debug(log::Category::net, "pinging bootstrap peer {}", addr.to_string());
    m_peer_client->ping(addr, kBootstrapPingTimeout,
                        [this, addr](Result<net::PingResult> reply) { on_bootstrap_reply(addr, std::move(reply)); });
  }
}

void Node::on_bootstrap_reply(const HostPort& addr, Result<net::PingResult> reply) {
  if (!reply) {
    if (m_bootstrap.on_failure(addr, m_ticks)) {
      log::warn(log::Category::net, "bootstrap peer {} unreachable ({}); retrying with backoff", addr.to_string(),
                reply.error().message);
    }
    return;
  }
  switch (m_bootstrap.on_answer(addr, reply->node_id)) {
    case net::BootstrapProbe::Verdict::joined:
      log::info(log::Category::net, "bootstrap peer {} answered: node {} (p2pd {}){}", addr.to_string(),
                reply->node_id.hex(), reply->version,
                reply->observed ? ", sees us at " + reply->observed->to_string() : "");
      if (reply->observed) m_observed.observe(addr.host, reply->observed->host, m_ticks);
      note_peer_reachability(addr, reply->reachability);
      if (m_overlay && !m_ring_started && !m_leaving && !m_join_through) {
        // Joined once this node knows how peers will reach it (maybe_join).
        m_join_through = addr;
        m_join_wait_since = m_ticks;
        maybe_join();
      }
      break;
    case net::BootstrapProbe::Verdict::is_self:
      log::warn(log::Category::net, "bootstrap peer {} is this node itself; name another peer of the pool",
                addr.to_string());
      break;
    case net::BootstrapProbe::Verdict::unknown_peer: break;
  }
}

void Node::wait_for_signal() {
  if (m_stopping) return;
  m_signals.async_wait([this](const boost::system::error_code& ec, int signal) {
    if (ec || m_stopping) return;
    if (signal == SIGHUP) {
      reload_config();
      wait_for_signal();
      return;
    }
    const char* name = signal == SIGTERM ? "SIGTERM" : "SIGINT";
    if (m_stop_signalled) {
      // A second SIGTERM/SIGINT while shutting down: the user wants out now.
      log::always(log::Category::node, "received {} again, exiting without finishing shutdown", name);
      std::_Exit(1);
    }
    m_stop_signalled = true;
    log::info(log::Category::node, "received {}, leaving the pool and shutting down (send it again to exit at once)",
              name);
    m_service.stopping(fmt::format("received {}: leaving the pool", name));
    begin_leave(nullptr);
    wait_for_signal();
  });
}

void Node::reload_config() {
  m_service.reloading();
  struct Reloaded {
    ServiceNotifier& service;
    ~Reloaded() { service.reloaded(); }
  } reloaded{m_service};
  auto parsed = parse_command_line(m_args);
  if (!parsed) {
    log::always(log::Category::config, "SIGHUP: config not reloaded, keeping the running one: {}",
                parsed.error().message);
    return;
  }
  const ReloadPlan plan = plan_reload(m_config, parsed->config);
  if (plan.log_level != m_config.log_level) {
    log::set_level(plan.log_level);
    m_config.log_level = plan.log_level;
    log::always(log::Category::config, "SIGHUP: log-level is now {}", log::to_string(plan.log_level));
  }
  if (plan.log_format != m_config.log_format) {
    log::set_format(plan.log_format);
    m_config.log_format = plan.log_format;
    log::always(log::Category::config, "SIGHUP: log-format is now {}", log::to_string(plan.log_format));
  }
  for (const auto& option : plan.need_restart) {
    log::always(log::Category::config, "SIGHUP: '{}' changed; it takes effect after a restart", option);
  }
  log::always(log::Category::config, "SIGHUP: configuration re-read{}",
              m_config.config_file ? " from " + m_config.config_file->string() : "");
}

void Node::get_status(std::function<void(control::NodeStatus)> done) {
  boost::asio::post(m_io, [this, done = std::move(done)] { done(snapshot()); });
}

control::NodeStatus Node::snapshot() const {
  control::NodeStatus status;
  status.node_id = m_identity.id.hex();
  status.listen = m_listen.to_string();
  status.observed_addrs = observed_addrs();
  status.reachability = std::string(nat::to_string(m_reachability.state()));
  if (m_raft && m_raft->leader()) status.leader_id = m_raft->leader()->hex();
  status.executor = std::string(exec::to_string(m_executor.kind));
  status.executor_device = m_executor.device;
  status.version = kVersion;
  status.uptime_s = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - m_started).count());
  status.pid = static_cast<std::uint32_t>(::getpid());
  status.state_dir = m_config.state_dir.string();
  for (const auto& peer : m_bootstrap.peers()) {
    status.bootstrap.push_back(control::BootstrapPeerStatus{
        peer.addr.to_string(), peer.node_id ? std::optional(peer.node_id->hex()) : std::nullopt, peer.failures});
  }
  return status;
}

}  // namespace p2pd::node
