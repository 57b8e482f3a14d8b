// UPnP-IGD through miniupnpc: SSDP discovery of an Internet Gateway Device,
// then WANIPConnection's GetExternalIPAddress, AddPortMapping and
// DeletePortMapping. Discovery waits kDiscoveryMs for answers, and only the
// default gateway's answers are followed: any host on the LAN can answer
// SSDP, and miniupnpc fetches the description of each device it is given
// (each read may wait 5 s). Renewals and removals go straight to the control
// URL that granted the mapping; MappingGrant::session carries the service
// type and our LAN address for them ("SERVICE_TYPE LAN_ADDRESS").
#include <arpa/inet.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>

#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string_view>

#include "daemon/nat/gateway.hpp"

namespace p2pd::nat {
namespace {

constexpr int kDiscoveryMs = 2000;
constexpr unsigned char kMulticastTtl = 2;  // miniupnpc's default: the LAN only
// UPnP errors AddPortMapping may answer (WANIPConnection:1 §2.4.16).
constexpr int kConflictInMappingEntry = 718;
constexpr int kOnlyPermanentLeasesSupported = 725;
constexpr int kPortTries = 4;  // the port asked for, then random ones if another host holds it

// The gateway's control point, from discovery or from an earlier grant.
struct ControlPoint {
  std::string control_url;
  std::string service_type;
  std::string lan_address;  // ours, as the gateway sees us
};

// The default IPv4 gateway, from the kernel's routing table; empty when
// there is none.
std::string default_gateway() {
  std::ifstream routes("/proc/net/route");
  std::string line;
  std::getline(routes, line);  // the header
  while (std::getline(routes, line)) {
    std::istringstream fields(line);
    std::string iface, destination, gateway;
    unsigned flags = 0;
    if (!(fields >> iface >> destination >> gateway >> std::hex >> flags)) continue;
    constexpr unsigned kRouteUp = 0x1, kRouteGateway = 0x2;
    if (destination != "00000000" || (flags & (kRouteUp | kRouteGateway)) != (kRouteUp | kRouteGateway)) continue;
    in_addr addr{};
    try {
      addr.s_addr = static_cast<in_addr_t>(std::stoul(gateway, nullptr, 16));  // network order, as the kernel keeps it
    } catch (const std::exception&) {
      continue;
    }
    char text[INET_ADDRSTRLEN] = {};
    if (::inet_ntop(AF_INET, &addr, text, sizeof text) != nullptr) return text;
  }
  return {};
}

// The host of an http://HOST[:PORT]/... URL.
std::string url_host(const char* url) {
  std::string_view text(url != nullptr ? url : "");
  const auto scheme = text.find("://");
  if (scheme == std::string_view::npos) return {};
  text.remove_prefix(scheme + 3);
  return std::string(text.substr(0, text.find_first_of(":/")));
}

std::string describe(int code) {
  const char* text = strupnperror(code);
  return text != nullptr ? fmt::format("{} ({})", text, code) : fmt::format("error {}", code);
}

Result<ControlPoint> discover() {
  const std::string gateway = default_gateway();
  if (gateway.empty()) return make_error(ErrorCode::unavailable, "UPnP: no default gateway");
  // Both IGD versions searched for at once, then one wait for the answers
  // (upnpDiscover would wait its full delay for each of four types in turn).
  static constexpr const char* kGatewayTypes[] = {"urn:schemas-upnp-org:device:InternetGatewayDevice:1",
                                                  "urn:schemas-upnp-org:device:InternetGatewayDevice:2", nullptr};
  int error = 0;
  UPNPDev* devices = upnpDiscoverDevices(kGatewayTypes, kDiscoveryMs, nullptr, nullptr, UPNP_LOCAL_PORT_ANY, 0,
                                         kMulticastTtl, &error, 1);
  // Only the gateway's own answers; the others are freed unread.
  UPNPDev* from_gateway = nullptr;
  UPNPDev* others = nullptr;
  while (devices != nullptr) {
    UPNPDev* device = devices;
    devices = device->pNext;
    UPNPDev*& chain = url_host(device->descURL) == gateway ? from_gateway : others;
    device->pNext = chain;
    chain = device;
  }
  freeUPNPDevlist(others);
  if (from_gateway == nullptr) {
    return make_error(ErrorCode::unavailable, "UPnP: the gateway {} did not answer discovery within {} ms", gateway,
                      kDiscoveryMs);
  }
  UPNPUrls urls{};
  IGDdatas data{};
  char lan_address[64] = {};
  const int found = UPNP_GetValidIGD(from_gateway, &urls, &data, lan_address, sizeof lan_address);
  freeUPNPDevlist(from_gateway);
  ControlPoint point{urls.controlURL != nullptr ? urls.controlURL : "", data.first.servicetype, lan_address};
  FreeUPNPUrls(&urls);
  switch (found) {
    case 1:
      if (point.control_url.empty() || point.service_type.empty() || point.lan_address.empty()) {
        return make_error(ErrorCode::unavailable, "UPnP gateway {}: its description names no WAN connection", gateway);
      }
      return point;
    case 2:
      return make_error(ErrorCode::unavailable, "UPnP gateway {}: says it is not connected to the internet", gateway);
    default: return make_error(ErrorCode::unavailable, "UPnP gateway {}: not an internet gateway device", gateway);
  }
}

// The control point an earlier grant came from (MappingRequest::gateway
// and ::session), or nothing when the request carries none.
std::optional<ControlPoint> granted_by(const MappingRequest& request) {
  const auto space = request.session.find(' ');
  if (request.gateway.empty() || space == std::string::npos) return std::nullopt;
  return ControlPoint{request.gateway, request.session.substr(0, space), request.session.substr(space + 1)};
}

}  // namespace

Result<MappingGrant> upnp_map(const MappingRequest& request) {
  // A renewal asks the gateway that granted the mapping, for the same port.
  const auto known = granted_by(request);
  const bool renewal = known.has_value();
  auto point = renewal ? Result<ControlPoint>(*known) : discover();
  if (!point) return point.error();
  const char* control = point->control_url.c_str();
  const char* service = point->service_type.c_str();
  char external_ip[40] = {};
  if (const int got = UPNP_GetExternalIPAddress(control, service, external_ip); got != UPNPCOMMAND_SUCCESS) {
    return make_error(ErrorCode::unavailable, "UPnP gateway {}: GetExternalIPAddress: {}", control, describe(got));
  }
  if (external_ip[0] == '\0') {
    return make_error(ErrorCode::unavailable, "UPnP gateway {}: has no external address", control);
  }
  const std::string internal = std::to_string(request.internal_port);
  const std::string description = fmt::format("p2pd port {}", request.internal_port);
  std::uint32_t lifetime = request.lifetime_s;
  std::uint16_t external = request.external_port != 0 ? request.external_port : request.internal_port;
  std::minstd_rand random(std::random_device{}());
  int added = UPNPCOMMAND_UNKNOWN_ERROR;
  for (int attempt = 0; attempt < kPortTries; ++attempt) {
    added = UPNP_AddPortMapping(control, service, std::to_string(external).c_str(), internal.c_str(),
                                point->lan_address.c_str(), description.c_str(), "TCP", nullptr,
                                std::to_string(lifetime).c_str());
    if (added == kOnlyPermanentLeasesSupported && lifetime != 0) {
      lifetime = 0;  // kept until removed: renewed anyway, and removed on exit
      --attempt;
      continue;
    }
    // Another host holds the port. A renewal does not move: the mapping it
    // renews would be left behind.
    if (added != kConflictInMappingEntry || renewal) break;
    external = static_cast<std::uint16_t>(std::uniform_int_distribution<int>(1024, 65535)(random));
  }
  if (added != UPNPCOMMAND_SUCCESS) {
    return make_error(ErrorCode::unavailable, "UPnP gateway {}: AddPortMapping {} -> {}:{}: {}", control, external,
                      point->lan_address, internal, describe(added));
  }
  MappingGrant grant;
  grant.protocol = MappingProtocol::upnp;
  grant.external = HostPort{external_ip, external};
  grant.lifetime_s = lifetime;
  grant.gateway = point->control_url;
  grant.session = fmt::format("{} {}", point->service_type, point->lan_address);
  return grant;
}

Result<void> upnp_unmap(const MappingRequest& request) {
  const auto point = granted_by(request);
  if (!point) return make_error(ErrorCode::invalid_argument, "UPnP: no gateway to remove the mapping from");
  const int deleted = UPNP_DeletePortMapping(point->control_url.c_str(), point->service_type.c_str(),
                                             std::to_string(request.external_port).c_str(), "TCP", nullptr);
  if (deleted != UPNPCOMMAND_SUCCESS) {
    return make_error(ErrorCode::unavailable, "UPnP gateway {}: DeletePortMapping {}: {}", point->control_url,
                      request.external_port, describe(deleted));
  }
  return {};
}

}  // namespace p2pd::nat
