// Port mapping (DESIGN.md, "Connectivity"), bound to the io thread: the
// nat::PortMapper core decides what to ask the router, a thread of its own
// makes the blocking gateway calls (nat/gateway.hpp), and what it made is
// recorded so that shutdown removes it.
//
// A mapping makes a node behind a home router reachable: its dial-back
// checks use the mapped port (advertised_port), and a node found public
// that way joins announcing the router's address and that port.

#include <algorithm>
#include <cstdlib>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>

#include "common/log.hpp"
#include "daemon/nat/gateway.hpp"
#include "daemon/node/node.hpp"

namespace p2pd::node {

void Node::start_port_mapping() {
  std::vector<nat::MappingProtocol> protocols;
  switch (m_config.port_mapping) {
    case PortMappingChoice::automatic:
      // NAT-PMP first: one datagram to the gateway, answered at once or
      // refused at once; UPnP discovery always waits its full window.
      protocols = {nat::MappingProtocol::natpmp, nat::MappingProtocol::upnp};
      break;
    case PortMappingChoice::natpmp: protocols = {nat::MappingProtocol::natpmp}; break;
    case PortMappingChoice::upnp: protocols = {nat::MappingProtocol::upnp}; break;
    case PortMappingChoice::off: break;
  }
  boost::system::error_code ec;
  const auto listen = boost::asio::ip::make_address(m_listen.host, ec);
  if (protocols.empty()) {
    m_port_mapping_off = "off (--port-mapping off)";
  } else if (m_config.advertise) {
    m_port_mapping_off = "not tried: --advertise names this node's address";
  } else if (!ec && listen.is_loopback()) {
    m_port_mapping_off = "not tried: listening on loopback";
  } else if (nat::is_public_ipv4(m_direct_addr.host)) {
    m_port_mapping_off = fmt::format("not needed: {} is a public address", m_direct_addr.host);
  }
  if (!m_port_mapping_off.empty()) protocols.clear();
  std::uint32_t lifetime = nat::PortMapper::kLifetimeSeconds;
  if (const char* test_lifetime = std::getenv("P2PD_TEST_PORT_MAPPING_LIFETIME_S")) {
    lifetime = static_cast<std::uint32_t>(std::clamp(std::atoi(test_lifetime), 2, 7200));
    log::warn(log::Category::net, "P2PD_TEST_PORT_MAPPING_LIFETIME_S: port mappings last {} s (tests only)", lifetime);
  }
  m_port_mapper = std::make_unique<nat::PortMapper>(m_listen.port, std::move(protocols), lifetime);
}

void Node::tick_port_mapping() {
  if (!m_port_mapper || m_stopping) return;
  auto request = m_port_mapper->tick(m_ticks);
  if (!request) return;
  boost::asio::post(m_gateway_thread, [this, request = *request, made = m_mapping_made] {
    if (request.kind == nat::MappingRequest::Kind::unmap) {
      auto removed = nat::gateway_unmap(request);
      if (!removed) log::debug(log::Category::net, "port mapping: {}", removed.error().message);
      {
        std::lock_guard lock(made->mutex);
        if (made->removal && made->removal->external_port == request.external_port) made->removal.reset();
      }
      boost::asio::post(m_io, [this] {
        if (!m_stopping) m_port_mapper->on_unmapped();
      });
      return;
    }
    auto grant = nat::gateway_map(request);
    if (grant) {
      nat::MappingRequest removal;
      removal.kind = nat::MappingRequest::Kind::unmap;
      removal.protocol = grant->protocol;
      removal.internal_port = request.internal_port;
      removal.external_port = grant->external.port;
      removal.gateway = grant->gateway;
      std::lock_guard lock(made->mutex);
      made->removal = std::move(removal);
    }
    boost::asio::post(m_io, [this, grant = std::move(grant)]() mutable {
      if (m_stopping) return;
      if (grant) {
        m_port_mapper->on_mapped(std::move(*grant), m_ticks);
      } else {
        m_port_mapper->on_failed(grant.error().message, m_ticks);
      }
      note_port_mapping();
    });
  });
}

void Node::note_port_mapping() {
  const auto& mapping = m_port_mapper->mapping();
  if (m_port_mapper->generation() != m_mapping_generation) {
    m_mapping_generation = m_port_mapper->generation();
    if (mapping) {
      log::info(log::Category::net, "port mapping: the router forwards {} to port {} ({}, {}, gateway {})",
                mapping->external.to_string(), m_listen.port, nat::to_string(mapping->protocol),
                mapping->lifetime_s == 0 ? std::string("until removed") : fmt::format("{} s", mapping->lifetime_s),
                mapping->gateway);
      trace_local(
          fmt::format("port mapped: {} ({})", mapping->external.to_string(), nat::to_string(mapping->protocol)));
    } else {
      log::warn(log::Category::net, "port mapping lost ({})", m_port_mapper->error());
      trace_local("port mapping lost");
    }
    // Whether peers can call us may have changed with it.
    m_reachability.recheck_soon();
    if (m_ring_started && !m_config.advertise && mapping && !announced_through_mapping()) {
      // The address peers know is not re-announced yet.
      log::warn(log::Category::net, "peers know this node as {}; it is reachable at {} after it restarts",
                m_chord_self.addr, mapping->external.to_string());
    }
  }
  const std::string& error = m_port_mapper->error();
  if (error != m_logged_mapping_error) {
    m_logged_mapping_error = error;
    if (!error.empty()) log::info(log::Category::net, "port mapping: {}", error);
  }
}

bool Node::announced_through_mapping() const {
  if (!m_port_mapper || !m_port_mapper->mapping()) return false;
  return m_chord_self.addr == m_port_mapper->mapping()->external.to_string();
}

void Node::remove_port_mapping() {
  std::optional<nat::MappingRequest> removal;
  {
    std::lock_guard lock(m_mapping_made->mutex);
    removal = std::exchange(m_mapping_made->removal, std::nullopt);
  }
  if (!removal) return;
  const std::string external = fmt::format("port {} ({})", removal->external_port, nat::to_string(removal->protocol));
  if (auto removed = nat::gateway_unmap(*removal); removed) {
    log::info(log::Category::net, "port mapping removed: {}", external);
  } else {
    log::warn(log::Category::net, "port mapping {} not removed: {}; the router drops it when it expires", external,
              removed.error().message);
  }
}

}  // namespace p2pd::node
