#include "daemon/nat/observed_addresses.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <iterator>

namespace p2pd::nat {

namespace {

// An IP address in one spelling ("::ffff:192.0.2.1" is 192.0.2.1), or
// empty for anything that is not one (a host name is no observer identity:
// two names can be one machine).
std::string canonical_ip(const std::string& text) {
  std::uint8_t bytes[16];
  char out[INET6_ADDRSTRLEN] = {};
  if (::inet_pton(AF_INET, text.c_str(), bytes) == 1) return ::inet_ntop(AF_INET, bytes, out, sizeof out);
  if (::inet_pton(AF_INET6, text.c_str(), bytes) != 1) return {};
  static constexpr std::uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (std::equal(std::begin(kMappedPrefix), std::end(kMappedPrefix), bytes))
    return ::inet_ntop(AF_INET, bytes + 12, out, sizeof out);
  return ::inet_ntop(AF_INET6, bytes, out, sizeof out);
}

}  // namespace

void ObservedAddresses::observe(const std::string& observer_ip, const std::string& observed_ip, std::uint64_t now) {
  const std::string observer = canonical_ip(observer_ip);
  const std::string observed = canonical_ip(observed_ip);
  if (observer.empty() || observed.empty()) return;
  m_by_observer[observer] = Report{observed, now};
  if (m_by_observer.size() <= kMaxObservers) return;
  auto oldest = std::min_element(m_by_observer.begin(), m_by_observer.end(),
                                 [](const auto& a, const auto& b) { return a.second.tick < b.second.tick; });
  m_by_observer.erase(oldest);
}

std::vector<ObservedAddress> ObservedAddresses::addresses(std::uint64_t now) const {
  std::map<std::string, std::size_t> counts;
  for (const auto& [observer, report] : m_by_observer) {
    if (now - report.tick <= kForgetTicks) ++counts[report.observed_ip];
  }
  std::vector<ObservedAddress> out;
  for (const auto& [ip, count] : counts) out.push_back(ObservedAddress{ip, count, count >= kAgreeing});
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.observers > b.observers; });
  return out;
}

std::vector<std::string> ObservedAddresses::adopted(std::uint64_t now) const {
  std::vector<std::string> out;
  for (const auto& address : addresses(now)) {
    if (address.adopted) out.push_back(address.ip);
  }
  return out;
}

std::size_t ObservedAddresses::observer_count(std::uint64_t now) const {
  return static_cast<std::size_t>(std::count_if(m_by_observer.begin(), m_by_observer.end(), [&](const auto& entry) {
    return now - entry.second.tick <= kForgetTicks;
  }));
}

}  // namespace p2pd::nat
