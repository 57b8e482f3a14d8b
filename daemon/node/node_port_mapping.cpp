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
#include <future>
#include <system_error>
#include <thread>

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

namespace {

// Records what a gateway call changed on the router (caller holds the lock).
void note_on_router(std::vector<nat::MappingRequest>& removals, const nat::MappingRequest& request,
                    const Result<nat::MappingGrant>* grant) {
  auto same = [](const nat::MappingRequest& a, nat::MappingProtocol protocol, std::uint16_t port) {
    return a.protocol == protocol && a.external_port == port;
  };
  if (request.kind == nat::MappingRequest::Kind::unmap) {
    std::erase_if(removals, [&](const auto& r) { return same(r, request.protocol, request.external_port); });
    return;
  }
  if (grant == nullptr || !*grant) return;
  const auto& made = **grant;
  if (std::any_of(removals.begin(), removals.end(),
                  [&](const auto& r) { return same(r, made.protocol, made.external.port); })) {
    return;
  }
  nat::MappingRequest removal;
  removal.kind = nat::MappingRequest::Kind::unmap;
  removal.protocol = made.protocol;
  removal.internal_port = request.internal_port;
  removal.external_port = made.external.port;
  removal.gateway = made.gateway;
  removal.session = made.session;
  removals.push_back(std::move(removal));
}

}  // namespace

void Node::tick_port_mapping() {
  if (!m_port_mapper || m_stopping) return;
  auto request = m_port_mapper->tick(m_ticks);
  if (!request) return;
  {
    std::lock_guard lock(m_gateway->mutex);
    m_gateway->busy = true;
  }
  auto call = [this, request = *request, work = m_gateway] {
    if (request.kind == nat::MappingRequest::Kind::unmap) {
      auto removed = nat::gateway_unmap(request);
      std::lock_guard lock(work->mutex);
      if (removed) note_on_router(work->removals, request, nullptr);
      work->busy = false;
      work->idle.notify_all();
      if (work->closed) return;  // the node is gone, or going
      if (!removed) log::debug(log::Category::net, "port mapping: {}", removed.error().message);
      boost::asio::post(m_io, [this] { m_port_mapper->on_unmapped(); });
      return;
    }
    auto grant = nat::gateway_map(request);
    std::lock_guard lock(work->mutex);
    note_on_router(work->removals, request, &grant);
    work->busy = false;
    work->idle.notify_all();
    if (work->closed) return;
    boost::asio::post(m_io, [this, grant = std::move(grant)]() mutable {
      if (m_stopping) return;
      if (grant) {
        m_port_mapper->on_mapped(std::move(*grant), m_ticks);
      } else {
        m_port_mapper->on_failed(grant.error().message, m_ticks);
      }
      note_port_mapping();
    });
  };
  try {
    std::thread(std::move(call)).detach();
  } catch (const std::system_error& e) {
    {
      std::lock_guard lock(m_gateway->mutex);
      m_gateway->busy = false;
    }
    if (request->kind == nat::MappingRequest::Kind::unmap) {
      m_port_mapper->on_unmapped();
    } else {
      m_port_mapper->on_failed(fmt::format("cannot start a thread: {}", e.what()), m_ticks);
    }
  }
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
  const auto announced = parse_host_port(m_chord_self.addr, false);
  return announced && !announced_through_relay() && announced->port == m_port_mapper->mapping()->external.port &&
         *announced != m_direct_addr;
}

void Node::stop_port_mapping() {
  std::vector<nat::MappingRequest> removals;
  {
    std::unique_lock lock(m_gateway->mutex);
    const bool idle = m_gateway->idle.wait_for(lock, kGatewayShutdownWait, [this] { return !m_gateway->busy; });
    m_gateway->closed = true;
    if (!idle) {
      log::warn(log::Category::net,
                "port mapping: the gateway has not answered in {} s; not removing the mapping "
                "(the router drops it when it expires)",
                kGatewayShutdownWait.count() / 1000);
      return;
    }
    removals = std::move(m_gateway->removals);
  }
  if (removals.empty()) return;
  // On a thread of its own too, waited for a bounded time: shutdown goes on
  // even if the gateway does not answer. The thread logs nothing once we
  // stop waiting for it (the logger may be gone by then).
  auto outcome = std::make_shared<std::promise<std::vector<std::string>>>();
  auto lines = outcome->get_future();
  try {
    std::thread([removals = std::move(removals), outcome] {
      std::vector<std::string> out;
      for (const auto& removal : removals) {
        const auto removed = nat::gateway_unmap(removal);
        out.push_back(removed ? fmt::format("port mapping removed: port {} ({})", removal.external_port,
                                            nat::to_string(removal.protocol))
                              : fmt::format("port mapping of port {} not removed: {}; the router drops it when it "
                                            "expires",
                                            removal.external_port, removed.error().message));
      }
      outcome->set_value(std::move(out));
    }).detach();
  } catch (const std::system_error& e) {
    log::warn(log::Category::net, "port mapping not removed: cannot start a thread: {}", e.what());
    return;
  }
  if (lines.wait_for(kGatewayShutdownWait) != std::future_status::ready) {
    log::warn(log::Category::net, "port mapping: the gateway has not confirmed the removal in {} s; going on",
              kGatewayShutdownWait.count() / 1000);
    return;
  }
  for (const auto& line : lines.get()) log::info(log::Category::net, "{}", line);
}

}  // namespace p2pd::node
