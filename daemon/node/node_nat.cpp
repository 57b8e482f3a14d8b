// Connectivity (DESIGN.md, "Connectivity"), bound to the io thread: the
// STUN client's UDP socket, observed addresses from peers' pings and STUN
// answers, and dial-back reachability checks. The decisions are the nat/
// cores'; this file moves their datagrams and RPCs.
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/rand.h>

#include <algorithm>

#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>

#include "common/log.hpp"
#include "daemon/node/node.hpp"

namespace p2pd::node {
namespace {

// This machine's own IP addresses: a reflexive address among them means
// there is no NAT on the way.
std::vector<std::string> local_ip_addresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr) continue;
    const int family = entry->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    char text[NI_MAXHOST] = {};
    const socklen_t length = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    if (::getnameinfo(entry->ifa_addr, length, text, sizeof text, nullptr, 0, NI_NUMERICHOST) == 0) {
      std::string ip = text;
      if (auto percent = ip.find('%'); percent != std::string::npos) ip.resize(percent);  // fe80::1%eth0
      out.push_back(std::move(ip));
    }
  }
  ::freeifaddrs(list);
  return out;
}

// STUN transaction ids must be hard to guess for anyone off the path, and
// for the other servers (RFC 8489 §6): each is drawn from the OS.
nat::TransactionId random_transaction() {
  nat::TransactionId id{};
  if (RAND_bytes(id.data(), static_cast<int>(id.size())) != 1) {
    // Not expected on Linux; a clock still makes ids differ.
    const auto now = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    for (std::size_t i = 0; i < id.size(); ++i) id[i] = static_cast<std::uint8_t>(now >> (8 * (i % 8)));
  }
  return id;
}

}  // namespace

void Node::start_nat() {
  if (m_config.stun.empty()) return;
  boost::system::error_code ec;
  // IPv4, as the servers are resolved: the listen address when it is one,
  // else any.
  const auto listen = boost::asio::ip::make_address(m_listen.host, ec);
  const boost::asio::ip::udp::endpoint local(
      !ec && listen.is_v4() ? listen : boost::asio::ip::address(boost::asio::ip::address_v4::any()), 0);
  m_stun_socket.open(local.protocol(), ec);
  if (!ec) m_stun_socket.bind(local, ec);
  if (ec) {
    log::warn(log::Category::net, "STUN disabled: cannot open a UDP socket on {}: {}", local.address().to_string(),
              ec.message());
    return;
  }
  m_stun_endpoints.assign(m_config.stun.size(), std::nullopt);
  m_stun_resolving.assign(m_config.stun.size(), false);
  // The client starts once every name is resolved (or failed to), so its
  // first requests, and the round-trip times measured from them, are real.
  for (std::size_t server = 0; server < m_config.stun.size(); ++server) resolve_stun(server);
}

void Node::resolve_stun(std::size_t server) {
  if (m_stun_resolving[server]) return;
  m_stun_resolving[server] = true;
  const HostPort& addr = m_config.stun[server];
  auto resolver = std::make_shared<boost::asio::ip::udp::resolver>(m_io);
  resolver->async_resolve(
      boost::asio::ip::udp::v4(), addr.host, std::to_string(addr.port),
      [this, resolver, server](const boost::system::error_code& ec,
                               boost::asio::ip::udp::resolver::results_type results) {
        if (m_stopping) return;
        m_stun_resolving[server] = false;
        std::string why;
        if (ec || results.empty()) {
          why = fmt::format("cannot resolve {}: {}", m_config.stun[server].host, ec ? ec.message() : "no IPv4 address");
          log::warn(log::Category::net, "STUN server {}: {}", m_config.stun[server].to_string(), why);
        } else {
          m_stun_endpoints[server] = results.begin()->endpoint();
        }
        if (!m_stun && std::none_of(m_stun_resolving.begin(), m_stun_resolving.end(), [](bool b) { return b; })) {
          m_stun = std::make_unique<nat::StunClient>(m_config.stun, random_transaction);
          for (std::size_t s = 0; s < m_stun_endpoints.size(); ++s) {
            if (!m_stun_endpoints[s]) m_stun->on_unreachable(s, "cannot resolve " + m_config.stun[s].host, m_ticks);
          }
          receive_stun();
        } else if (m_stun && !why.empty()) {
          m_stun->on_unreachable(server, why, m_ticks);
        }
      });
}

void Node::receive_stun() {
  m_stun_socket.async_receive_from(boost::asio::buffer(m_stun_buffer), m_stun_sender,
                                   [this](const boost::system::error_code& ec, std::size_t n) {
                                     if (ec == boost::asio::error::operation_aborted || m_stopping || !m_stun) return;
                                     if (!ec) on_stun_datagram(n);
                                     receive_stun();
                                   });
}

void Node::on_stun_datagram(std::size_t size) {
  // Only a server's own address may answer its transactions.
  std::vector<std::size_t> from;
  for (std::size_t i = 0; i < m_stun_endpoints.size(); ++i) {
    if (m_stun_endpoints[i] == m_stun_sender) from.push_back(i);
  }
  if (!from.empty() && m_stun->on_datagram(std::span(m_stun_buffer.data(), size), from, m_ticks)) on_stun_answer();
}

void Node::on_stun_answer() {
  for (const auto& server : m_stun->servers()) {
    if (server.mapped && server.answered_tick == m_ticks) {
      log::debug(log::Category::net, "STUN server {} sees us at {} ({} ms)", server.server.to_string(),
                 server.mapped->to_string(), server.rtt_ticks * kTickInterval.count());
    }
  }
  // Each server observes from its IP: a peer on the same machine is the
  // same observer, not a second opinion.
  for (std::size_t i = 0; i < m_stun->servers().size(); ++i) {
    const auto& server = m_stun->servers()[i];
    if (server.mapped && m_stun_endpoints[i]) {
      m_observed.observe(m_stun_endpoints[i]->address().to_string(), server.mapped->host, server.answered_tick);
    }
  }
  const nat::NatMapping mapping = nat_mapping();
  if (mapping != m_logged_mapping) {
    m_logged_mapping = mapping;
    log::info(log::Category::net, "NAT mapping: {}", nat::to_string(mapping));
    trace_local(fmt::format("NAT mapping: {}", nat::to_string(mapping)));
  }
}

nat::NatMapping Node::nat_mapping() const {
  if (!m_stun) return nat::NatMapping::unknown;
  // One answer per server host, from the same socket, recent enough to
  // describe the mapping as it is now.
  std::vector<HostPort> reflexive;
  std::vector<std::string> hosts;
  for (const auto& server : m_stun->servers()) {
    // A refresh may take the whole retransmission schedule (39.5 s).
    if (!server.mapped || m_ticks - server.answered_tick > nat::StunClient::kRefreshTicks + 800) continue;
    const std::size_t i = static_cast<std::size_t>(&server - m_stun->servers().data());
    const std::string host = m_stun_endpoints[i] ? m_stun_endpoints[i]->address().to_string() : server.server.host;
    if (std::find(hosts.begin(), hosts.end(), host) != hosts.end()) continue;
    hosts.push_back(host);
    reflexive.push_back(*server.mapped);
  }
  return nat::classify_mapping(reflexive, local_ip_addresses());
}

void Node::send_stun(std::size_t server, std::string bytes) {
  if (server >= m_stun_endpoints.size()) return;
  if (!m_stun_endpoints[server]) {
    // Its name did not resolve: try again, and count this request lost.
    resolve_stun(server);
    return;
  }
  auto payload = std::make_shared<std::string>(std::move(bytes));
  m_stun_socket.async_send_to(boost::asio::buffer(*payload), *m_stun_endpoints[server],
                              [payload](const boost::system::error_code&, std::size_t) {
                                // A lost datagram is what retransmission is for.
                              });
}

std::vector<HostPort> Node::reachability_helpers() const {
  // Bootstrap peers that answered, then peers heard from lately.
  std::vector<HostPort> helpers;
  for (const auto& peer : m_bootstrap.peers()) {
    if (peer.node_id) helpers.push_back(peer.addr);
  }
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [id, seen] : m_peers_seen) {
    if (now - seen.last_seen > kLearnerFreshness) continue;
    auto addr = parse_host_port(seen.addr, false);
    if (addr && std::find(helpers.begin(), helpers.end(), *addr) == helpers.end()) helpers.push_back(*addr);
  }
  return helpers;
}

std::uint16_t Node::advertised_port() const {
  // The port the router forwards to us, when it does; else the direct one:
  // a relay's allocation is not where a dial-back or an observed address
  // should point.
  if (m_port_mapper && m_port_mapper->mapping()) return m_port_mapper->mapping()->external.port;
  return m_direct_addr.port != 0 ? m_direct_addr.port : m_listen.port;
}

void Node::tick_nat() {
  if (m_stun) {
    for (auto& datagram : m_stun->tick(m_ticks)) send_stun(datagram.server, std::move(datagram.bytes));
  }
  if (!m_peer_client || m_leaving) return;
  const auto helpers = reachability_helpers();

  // Observations: a peer's ping says where it sees us from. Asked of a few
  // peers on different hosts while fewer than kWantedObservers report.
  if (m_ticks >= m_next_observation_tick && !helpers.empty()) {
    m_next_observation_tick = m_ticks + kObservationTicks;
    if (m_observed.observer_count(m_ticks) < kWantedObservers) {
      std::vector<std::string> hosts;
      for (const auto& helper : helpers) {
        if (hosts.size() >= 2) break;
        if (std::find(hosts.begin(), hosts.end(), helper.host) != hosts.end()) continue;
        hosts.push_back(helper.host);
        m_peer_client->ping(helper, kBootstrapPingTimeout, [this, helper](Result<net::PingResult> reply) {
          if (reply && reply->observed) m_observed.observe(helper.host, reply->observed->host, m_ticks);
          if (reply) note_peer_reachability(helper, reply->reachability);
        });
      }
    }
  }

  // A mapping being asked for decides which port a dial-back should try:
  // wait for the answer (seconds).
  if (m_port_mapper && !m_port_mapper->settled()) return;
  for (const auto& request : m_reachability.tick(m_ticks, helpers, advertised_port())) {
    log::debug(log::Category::net, "asking {} to dial us back at port {}", request.helper.to_string(), request.port);
    m_peer_client->dial_back(request.helper, request.port, kDialBackCallTimeout,
                             [this, helper = request.helper](Result<net::DialBackResult> result) {
                               if (!result) {
                                 m_reachability.on_no_answer(helper, m_ticks);
                               } else {
                                 m_reachability.on_answer(helper, result->reached,
                                                          result->reached ? result->dialed_addr : result->error,
                                                          m_ticks);
                               }
                               note_reachability();
                             });
  }
}

void Node::note_reachability() {
  const nat::Reachability now = m_reachability.state();
  if (now == m_logged_reachability) return;
  m_logged_reachability = now;
  if (m_peer_server) m_peer_server->set_reachability(std::string(nat::to_string(now)));
  log::info(log::Category::net, "reachability: {} ({})", nat::to_string(now), m_reachability.detail());
  trace_local(fmt::format("reachability: {}", nat::to_string(now)));
}

std::vector<std::string> Node::observed_addrs() const {
  // Adopted addresses, with the port peers would call: the advertised one.
  std::vector<std::string> out;
  for (const auto& ip : m_observed.adopted(m_ticks)) out.push_back(HostPort{ip, advertised_port()}.to_string());
  return out;
}

void Node::netcheck(std::function<void(control::NetcheckView)> done) {
  boost::asio::post(m_io, [this, done = std::move(done)] {
    control::NetcheckView view;
    for (const auto& address : m_observed.addresses(m_ticks)) {
      view.observed.push_back(control::ObservedAddressView{address.ip, address.observers, address.adopted});
    }
    view.observers = m_observed.observer_count(m_ticks);
    view.reachability = std::string(nat::to_string(m_reachability.state()));
    view.reachability_detail = m_reachability.detail();
    if (m_reachability.state() != nat::Reachability::unknown) {
      view.reachability_checked_s = (m_ticks - m_reachability.checked_tick()) * kTickInterval.count() / 1000;
    }
    view.nat_mapping = std::string(nat::to_string(nat_mapping()));
    if (m_stun) {
      for (const auto& server : m_stun->servers()) {
        control::StunServerView s;
        s.server = server.server.to_string();
        if (server.mapped) s.mapped = server.mapped->to_string();
        s.rtt_ms = server.rtt_ticks * static_cast<std::uint64_t>(kTickInterval.count());
        s.error = server.error;
        view.stun.push_back(std::move(s));
      }
    }
    view.port_mapping = "none";
    if (m_port_mapper) {
      auto& state = view.port_mapping_state;
      state.enabled = m_port_mapper->enabled();
      state.error = m_port_mapping_off.empty() ? m_port_mapper->error() : m_port_mapping_off;
      state.renewals = m_port_mapper->renewals();
      if (const auto& mapping = m_port_mapper->mapping()) {
        view.port_mapping = std::string(nat::to_string(mapping->protocol));
        state.addr = mapping->external.to_string();
        state.gateway = mapping->gateway;
        state.lifetime_s = mapping->lifetime_s;
        state.renew_in_s = m_port_mapper->renew_in(m_ticks) * kTickInterval.count() / 1000;
      }
    }
    if (m_relay_link) {
      view.relay.state = m_relay_link->connected() ? "connected" : "connecting";
      view.relay.addr = m_relay_link->allocation().to_string();
    }
    if (m_relay_peer) view.relay.peer = m_relay_peer->to_string();
    view.relay.error = m_relay_error;
    if (m_relay_server) {
      const auto stats = m_relay_server->stats();
      control::NetcheckView::RelayService service;
      service.reservations = static_cast<std::uint32_t>(stats.reservations);
      service.circuits = static_cast<std::uint32_t>(stats.circuits);
      service.bytes_relayed = stats.bytes_relayed;
      service.circuits_refused = stats.circuits_refused;
      service.max_reservations = m_config.relay_max_reservations;
      service.max_circuits = m_config.relay_max_circuits;
      service.max_rate_mib = m_config.relay_max_rate_mib;
      view.relay_service = service;
    }
    view.punching.attempts = m_punch_planner.attempts();
    view.punching.succeeded = m_punch_planner.successes();
    if (m_peer_client) view.punching.direct_calls = m_peer_client->direct_calls();
    for (const auto& addr : punch_wanted()) {
      const auto parsed = parse_host_port(addr, false);
      const bool direct = parsed && m_peer_client && m_peer_client->has_direct(*parsed);
      (direct ? view.punching.direct : view.punching.relayed).push_back(addr);
    }
    done(std::move(view));
  });
}

}  // namespace p2pd::node
