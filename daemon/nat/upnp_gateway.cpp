// UPnP-IGD through miniupnpc: SSDP discovery of an Internet Gateway Device,
// then WANIPConnection's GetExternalIPAddress, AddPortMapping and
// DeletePortMapping. Discovery waits kDiscoveryMs for answers; miniupnpc
// bounds its HTTP calls itself (a few seconds).
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>

#include <random>

#include "daemon/nat/gateway.hpp"

namespace p2pd::nat {
namespace {

constexpr int kDiscoveryMs = 2000;
constexpr unsigned char kMulticastTtl = 2;  // miniupnpc's default: the LAN only
// UPnP errors AddPortMapping may answer (WANIPConnection:1 §2.4.16).
constexpr int kConflictInMappingEntry = 718;
constexpr int kOnlyPermanentLeasesSupported = 725;
constexpr int kPortTries = 4;  // the port asked for, then random ones if another host holds it

// The gateway found by discovery. The control URL and service type are all
// later calls need; they travel in MappingGrant::gateway as "TYPE URL".
struct Igd {
  UPNPUrls urls{};
  IGDdatas data{};
  char lan_address[64] = {};
  Igd() = default;
  Igd(const Igd&) = delete;
  Igd& operator=(const Igd&) = delete;
  ~Igd() { FreeUPNPUrls(&urls); }
};

std::string describe(int code) {
  const char* text = strupnperror(code);
  return text != nullptr ? fmt::format("{} ({})", text, code) : fmt::format("error {}", code);
}

Result<void> discover(Igd& igd) {
  // Both IGD versions searched for at once, then one wait for the answers
  // (upnpDiscover would wait its full delay for each of four types in turn).
  static constexpr const char* kGatewayTypes[] = {"urn:schemas-upnp-org:device:InternetGatewayDevice:1",
                                                  "urn:schemas-upnp-org:device:InternetGatewayDevice:2", nullptr};
  int error = 0;
  UPNPDev* devices = upnpDiscoverDevices(kGatewayTypes, kDiscoveryMs, nullptr, nullptr, UPNP_LOCAL_PORT_ANY, 0,
                                         kMulticastTtl, &error, 1);
  if (devices == nullptr) {
    return make_error(ErrorCode::unavailable, "UPnP: no internet gateway answered discovery within {} ms",
                      kDiscoveryMs);
  }
  const int found = UPNP_GetValidIGD(devices, &igd.urls, &igd.data, igd.lan_address, sizeof igd.lan_address);
  freeUPNPDevlist(devices);
  switch (found) {
    case 1: return {};
    case 2:
      return make_error(ErrorCode::unavailable, "UPnP gateway {}: says it is not connected to the internet",
                        igd.urls.controlURL != nullptr ? igd.urls.controlURL : "?");
    case 0: return make_error(ErrorCode::unavailable, "UPnP: devices answered, but none is an internet gateway");
    default: return make_error(ErrorCode::unavailable, "UPnP: the device found is not an internet gateway");
  }
}

}  // namespace

Result<MappingGrant> upnp_map(const MappingRequest& request) {
  Igd igd;
  if (auto found = discover(igd); !found) return found.error();
  const char* control = igd.urls.controlURL;
  const char* service = igd.data.first.servicetype;
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
    added = UPNP_AddPortMapping(control, service, std::to_string(external).c_str(), internal.c_str(), igd.lan_address,
                                description.c_str(), "TCP", nullptr, std::to_string(lifetime).c_str());
    if (added == kOnlyPermanentLeasesSupported && lifetime != 0) {
      lifetime = 0;  // kept until removed: renewed anyway, and removed on exit
      --attempt;
      continue;
    }
    if (added != kConflictInMappingEntry) break;
    external = static_cast<std::uint16_t>(std::uniform_int_distribution<int>(1024, 65535)(random));
  }
  if (added != UPNPCOMMAND_SUCCESS) {
    return make_error(ErrorCode::unavailable, "UPnP gateway {}: AddPortMapping {} -> {}:{}: {}", control, external,
                      igd.lan_address, internal, describe(added));
  }
  MappingGrant grant;
  grant.protocol = MappingProtocol::upnp;
  grant.external = HostPort{external_ip, external};
  grant.lifetime_s = lifetime;
  grant.gateway = fmt::format("{} {}", service, control);
  return grant;
}

Result<void> upnp_unmap(const MappingRequest& request) {
  const auto space = request.gateway.find(' ');
  if (space == std::string::npos) return make_error(ErrorCode::invalid_argument, "UPnP: no gateway to remove from");
  const std::string service = request.gateway.substr(0, space);
  const std::string control = request.gateway.substr(space + 1);
  const int deleted = UPNP_DeletePortMapping(control.c_str(), service.c_str(),
                                             std::to_string(request.external_port).c_str(), "TCP", nullptr);
  if (deleted != UPNPCOMMAND_SUCCESS) {
    return make_error(ErrorCode::unavailable, "UPnP gateway {}: DeletePortMapping {}: {}", control,
                      request.external_port, describe(deleted));
  }
  return {};
}

}  // namespace p2pd::nat
