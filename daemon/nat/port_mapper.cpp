#include "daemon/nat/port_mapper.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <utility>

#include <fmt/format.h>

namespace p2pd::nat {

std::string_view to_string(MappingProtocol protocol) {
  switch (protocol) {
    case MappingProtocol::natpmp: return "natpmp";
    case MappingProtocol::upnp: return "upnp";
  }
  return "?";
}

bool is_public_ipv4(std::string_view ip) {
  in_addr parsed{};
  const std::string text(ip);
  if (::inet_pton(AF_INET, text.c_str(), &parsed) != 1) return false;
  const std::uint32_t a = ntohl(parsed.s_addr);
  struct Block {
    std::uint32_t prefix;
    int bits;
  };
  static constexpr std::array<Block, 9> kNotPublic{{
      {0x00000000, 8},   // 0/8: "this network"
      {0x0A000000, 8},   // 10/8: RFC 1918
      {0x64400000, 10},  // 100.64/10: RFC 6598, carrier-grade NAT
      {0x7F000000, 8},   // 127/8: loopback
      {0xA9FE0000, 16},  // 169.254/16: link-local
      {0xAC100000, 12},  // 172.16/12: RFC 1918
      {0xC0A80000, 16},  // 192.168/16: RFC 1918
      {0xE0000000, 4},   // 224/4: multicast
      {0xF0000000, 4},   // 240/4: reserved, broadcast
  }};
  return std::none_of(kNotPublic.begin(), kNotPublic.end(), [a](const Block& block) {
    const std::uint32_t mask = ~std::uint32_t{0} << (32 - block.bits);
    return (a & mask) == block.prefix;
  });
}

PortMapper::PortMapper(std::uint16_t internal_port, std::vector<MappingProtocol> protocols, std::uint32_t lifetime_s)
    : m_internal_port(internal_port),
      m_lifetime_s(std::max<std::uint32_t>(lifetime_s, 1)),
      m_protocols(std::move(protocols)),
      m_wanted_port(internal_port) {
  m_settled = m_protocols.empty();
}

std::optional<MappingRequest> PortMapper::tick(std::uint64_t now) {
  if (m_in_flight) return std::nullopt;
  if (m_unmap_due) {
    m_in_flight = std::exchange(m_unmap_due, std::nullopt);
    return m_in_flight;
  }
  if (m_protocols.empty()) return std::nullopt;
  MappingRequest request;
  request.kind = MappingRequest::Kind::map;
  request.internal_port = m_internal_port;
  request.lifetime_s = m_lifetime_s;
  if (m_mapping) {
    // Renewals go on past the expiry until one fails there (on_failed): a
    // grant too short to renew before it ends does not flap.
    if (now < m_renew_tick) return std::nullopt;
    request.protocol = m_mapping->protocol;
    request.external_port = m_mapping->external.port;
    request.gateway = m_mapping->gateway;
    request.session = m_mapping->session;
  } else {
    if (now < m_retry_tick) return std::nullopt;
    request.protocol = m_protocols[m_next];
    request.external_port = m_wanted_port;
  }
  m_in_flight = request;
  return request;
}

void PortMapper::on_mapped(MappingGrant grant, std::uint64_t now) {
  if (!m_in_flight || m_in_flight->kind != MappingRequest::Kind::map) return;
  const MappingRequest request = *std::exchange(m_in_flight, std::nullopt);
  std::string refused;
  if (grant.external.port == 0) {
    refused = "the gateway granted port 0";
  } else if (!is_public_ipv4(grant.external.host)) {
    refused =
        fmt::format("the gateway's own address {} is not public (another NAT is in front of it)", grant.external.host);
  }
  if (!refused.empty()) {
    // Nobody can use it; take it back rather than leave a hole in the router.
    if (grant.external.port != 0) {
      MappingRequest unmap;
      unmap.kind = MappingRequest::Kind::unmap;
      unmap.protocol = grant.protocol;
      unmap.internal_port = m_internal_port;
      unmap.external_port = grant.external.port;
      unmap.gateway = grant.gateway;
      unmap.session = grant.session;
      m_unmap_due = unmap;
    }
    if (m_mapping) {
      // A renewal: removing the grant removes the mapping it renewed too
      // (NAT-PMP removes by internal port), so it is lost now.
      m_error = fmt::format("renewing the {} mapping: {}", to_string(request.protocol), refused);
      lose(now);
      return;
    }
    m_in_flight = request;  // on_failed reads what was asked
    on_failed(std::move(refused), now);
    return;
  }
  // No more than was asked: a bogus answer must not pin a mapping for
  // years without renewals. (0 from UPnP: a permanent lease, rechecked.)
  if (request.lifetime_s != 0 && grant.lifetime_s > request.lifetime_s) grant.lifetime_s = request.lifetime_s;
  const bool renewal = m_mapping.has_value();
  const bool moved = !m_mapping || m_mapping->external != grant.external;
  const std::uint64_t lifetime = grant.lifetime_s;
  m_mapping = std::move(grant);
  if (lifetime == 0) {
    m_renew_tick = now + kPermanentRecheckTicks;
    m_expiry_tick = m_renew_tick + kPermanentRecheckTicks;
  } else {
    m_renew_tick = now + std::max<std::uint64_t>(kTicksPerSecond, lifetime * kTicksPerSecond / 2);
    m_expiry_tick = now + lifetime * kTicksPerSecond;
  }
  if (renewal && !moved) ++m_renewals;
  if (moved) ++m_generation;
  m_wanted_port = m_mapping->external.port;
  m_next = 0;
  m_failed_rounds = 0;
  m_round_errors.clear();
  m_error.clear();
  m_settled = true;
}

void PortMapper::on_failed(std::string error, std::uint64_t now) {
  if (!m_in_flight) return;
  const MappingRequest request = *std::exchange(m_in_flight, std::nullopt);
  if (request.kind == MappingRequest::Kind::unmap) return;  // it expires on its own
  if (m_mapping) {
    // A renewal: the mapping holds until it expires; try again halfway
    // there, at least a second apart.
    m_error = fmt::format("renewing the {} mapping: {}", to_string(request.protocol), error);
    if (now >= m_expiry_tick) {
      lose(now);
    } else {
      m_renew_tick = now + std::max<std::uint64_t>(kTicksPerSecond, (m_expiry_tick - now) / 2);
    }
    return;
  }
  if (!m_round_errors.empty()) m_round_errors += "; ";
  m_round_errors += fmt::format("{}: {}", to_string(request.protocol), error);
  if (++m_next >= m_protocols.size()) round_failed(now);
}

void PortMapper::on_unmapped() {
  if (m_in_flight && m_in_flight->kind == MappingRequest::Kind::unmap) m_in_flight.reset();
}

std::optional<MappingRequest> PortMapper::release() {
  if (!m_mapping) return std::nullopt;
  MappingRequest unmap;
  unmap.kind = MappingRequest::Kind::unmap;
  unmap.protocol = m_mapping->protocol;
  unmap.internal_port = m_internal_port;
  unmap.external_port = m_mapping->external.port;
  unmap.gateway = m_mapping->gateway;
  unmap.session = m_mapping->session;
  m_mapping.reset();
  ++m_generation;
  return unmap;
}

std::uint64_t PortMapper::renew_in(std::uint64_t now) const {
  return m_mapping && m_renew_tick > now ? m_renew_tick - now : 0;
}

void PortMapper::lose(std::uint64_t now) {
  m_mapping.reset();
  ++m_generation;
  m_next = 0;
  m_round_errors.clear();
  m_retry_tick = now;
}

void PortMapper::round_failed(std::uint64_t now) {
  m_settled = true;
  m_error = std::move(m_round_errors);
  m_round_errors.clear();
  m_next = 0;
  ++m_failed_rounds;
  const std::uint64_t backoff = kFirstRetryTicks << std::min<std::uint32_t>(m_failed_rounds - 1, 10);
  m_retry_tick = now + std::min(kMaxRetryTicks, backoff);
}

}  // namespace p2pd::nat
