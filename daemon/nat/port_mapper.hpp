#pragma once
// Port mapping: ask the home router to forward our listen port, so peers can
// call this node directly instead of through a relay. Two protocols, tried
// in turn: NAT-PMP (RFC 6886, one UDP exchange with the default gateway)
// and UPnP-IGD (WANIPConnection AddPortMapping after SSDP discovery).
// Sans-IO: ticks and the gateway's answers in, at most one request at a
// time out; the driver makes the blocking library calls off the io thread.
//
// A mapping is renewed halfway to its expiry (RFC 6886 §3.3), a failed
// renewal is retried while the mapping lasts, and a lost one starts the
// search again. A gateway whose own public address is private (another NAT
// in front of it) grants a mapping no peer can use: it is refused and
// removed.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/host_port.hpp"

namespace p2pd::nat {

enum class MappingProtocol { natpmp, upnp };
std::string_view to_string(MappingProtocol protocol);

// What the gateway granted.
struct MappingGrant {
  MappingProtocol protocol = MappingProtocol::natpmp;
  HostPort external;             // the router's public address and the port it forwards to us
  std::uint32_t lifetime_s = 0;  // 0: until removed (a UPnP permanent lease)
  std::string gateway;           // who granted it: an IP, or a UPnP control URL
  // Opaque to the core: what the driver needs to renew or remove it without
  // discovering the gateway again (UPnP: the service type, our LAN address).
  std::string session;
};

// One call for the driver to make.
struct MappingRequest {
  enum class Kind { map, unmap };
  Kind kind = Kind::map;
  MappingProtocol protocol = MappingProtocol::natpmp;
  std::uint16_t internal_port = 0;
  std::uint16_t external_port = 0;  // map: the port wanted; unmap: the port to remove
  std::uint32_t lifetime_s = 0;
  std::string gateway;  // renewal, unmap: who granted it (MappingGrant::gateway)
  std::string session;  // renewal, unmap: MappingGrant::session
};

// A public address is one a peer anywhere could reach: not RFC 1918,
// shared (RFC 6598), loopback, link-local, unspecified or multicast.
bool is_public_ipv4(std::string_view ip);

class PortMapper {
 public:
  static constexpr std::uint64_t kTicksPerSecond = 20;
  static constexpr std::uint32_t kLifetimeSeconds = 7200;  // RFC 6886 §3.3's recommended lifetime
  // A permanent lease has no expiry to renew before: it is added again this
  // often, so a router that rebooted gets it back.
  static constexpr std::uint64_t kPermanentRecheckTicks = 20 * 60 * kTicksPerSecond;
  // After every protocol failed: the gateway may learn them (a setting
  // changed, a router replaced), so ask again, less and less often.
  static constexpr std::uint64_t kFirstRetryTicks = 60 * kTicksPerSecond;
  static constexpr std::uint64_t kMaxRetryTicks = 60 * 60 * kTicksPerSecond;

  // `protocols`: the order to try them in; empty turns mapping off.
  // `lifetime_s`: what to ask for (tests ask for seconds, to see renewals).
  PortMapper(std::uint16_t internal_port, std::vector<MappingProtocol> protocols,
             std::uint32_t lifetime_s = kLifetimeSeconds);

  // The next call to make, when one is due and none is in flight.
  std::optional<MappingRequest> tick(std::uint64_t now);
  // Answers to a map call in flight.
  void on_mapped(MappingGrant grant, std::uint64_t now);
  void on_failed(std::string error, std::uint64_t now);
  // An unmap's answer, whatever it was: a mapping left behind expires.
  void on_unmapped();
  // The removal of the mapping held, if any (at shutdown); forgets it.
  std::optional<MappingRequest> release();

  [[nodiscard]] const std::optional<MappingGrant>& mapping() const { return m_mapping; }
  // Every protocol has been tried once (or a mapping made): reachability
  // checks can rely on what mapping() says.
  [[nodiscard]] bool settled() const { return m_settled; }
  [[nodiscard]] bool enabled() const { return !m_protocols.empty(); }
  // Why the last round found no mapping ("natpmp: ...; upnp: ..."), or why
  // the last renewal failed; empty when the last call worked.
  [[nodiscard]] const std::string& error() const { return m_error; }
  // Changes whenever mapping() does (made, lost, moved): the node checks
  // its reachability again.
  [[nodiscard]] std::uint64_t generation() const { return m_generation; }
  [[nodiscard]] std::uint64_t renewals() const { return m_renewals; }
  // Ticks until the next renewal (0 when none is held).
  [[nodiscard]] std::uint64_t renew_in(std::uint64_t now) const;

 private:
  void lose(std::uint64_t now);
  void round_failed(std::uint64_t now);

  std::uint16_t m_internal_port;
  std::uint32_t m_lifetime_s;
  std::vector<MappingProtocol> m_protocols;
  std::size_t m_next = 0;  // the protocol the round tries next
  std::optional<MappingRequest> m_in_flight;
  std::optional<MappingRequest> m_unmap_due;  // a grant refused: removed before anything else
  std::optional<MappingGrant> m_mapping;
  std::uint64_t m_renew_tick = 0;
  std::uint64_t m_expiry_tick = 0;
  std::uint64_t m_retry_tick = 0;
  std::uint32_t m_failed_rounds = 0;
  std::uint16_t m_wanted_port = 0;  // the external port to ask for: the last one held
  std::string m_round_errors;
  std::string m_error;
  bool m_settled = false;
  std::uint64_t m_generation = 0;
  std::uint64_t m_renewals = 0;
};

}  // namespace p2pd::nat
