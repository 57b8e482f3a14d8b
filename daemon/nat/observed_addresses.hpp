#pragma once
// The public address of this node as others see it (DESIGN.md,
// "Connectivity"). Every peer that answers a ping says which address the
// call came from, and every STUN server says the same; one observer could
// lie or sit on our side of a NAT, so an address is adopted only once
// kAgreeing observers on different IP addresses agree (libp2p's identify
// protocol does the same with 4). Sans-IO and bounded.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace p2pd::nat {

struct ObservedAddress {
  std::string ip;
  std::size_t observers = 0;  // distinct observer IPs reporting it now
  bool adopted = false;
};

class ObservedAddresses {
 public:
  static constexpr std::size_t kAgreeing = 2;
  // Observers remembered (the least recently heard go first), and how long
  // an observation counts (30 minutes at 20 ticks a second).
  static constexpr std::size_t kMaxObservers = 64;
  static constexpr std::uint64_t kForgetTicks = 30 * 60 * 20;

  // `observer_ip`: the address of the peer or server that reported; its
  // latest report replaces its earlier ones. Both must be IP addresses
  // (IPv4-mapped IPv6 counts as IPv4); anything else is ignored.
  void observe(const std::string& observer_ip, const std::string& observed_ip, std::uint64_t now);

  // Every address reported by a live observer, most observers first.
  [[nodiscard]] std::vector<ObservedAddress> addresses(std::uint64_t now) const;
  // The adopted ones (at least kAgreeing observers), most observers first.
  [[nodiscard]] std::vector<std::string> adopted(std::uint64_t now) const;
  // Distinct live observers.
  [[nodiscard]] std::size_t observer_count(std::uint64_t now) const;

 private:
  struct Report {
    std::string observed_ip;
    std::uint64_t tick = 0;
  };
  std::map<std::string, Report> m_by_observer;
};

}  // namespace p2pd::nat
