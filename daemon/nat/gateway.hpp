#pragma once
// The router's port mapping services, spoken through libnatpmp (NAT-PMP,
// RFC 6886) and miniupnpc (UPnP-IGD). Every call blocks on the network
// (retransmissions, SSDP discovery, HTTP), so the node makes them off its
// io thread; each is bounded in time (about 2 s for NAT-PMP, a few seconds
// for UPnP). They keep no state between calls: safe from any thread.

#include "common/result.hpp"
#include "daemon/nat/port_mapper.hpp"

namespace p2pd::nat {

Result<MappingGrant> natpmp_map(const MappingRequest& request);
Result<void> natpmp_unmap(const MappingRequest& request);
Result<MappingGrant> upnp_map(const MappingRequest& request);
Result<void> upnp_unmap(const MappingRequest& request);

inline Result<MappingGrant> gateway_map(const MappingRequest& request) {
  return request.protocol == MappingProtocol::natpmp ? natpmp_map(request) : upnp_map(request);
}
inline Result<void> gateway_unmap(const MappingRequest& request) {
  return request.protocol == MappingProtocol::natpmp ? natpmp_unmap(request) : upnp_unmap(request);
}

}  // namespace p2pd::nat
