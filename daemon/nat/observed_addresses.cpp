#include "daemon/nat/observed_addresses.hpp"

#include <algorithm>

namespace p2pd::nat {

void ObservedAddresses::observe(const std::string& observer_ip, const std::string& observed_ip, std::uint64_t now) {
  if (observer_ip.empty() || observed_ip.empty()) return;
  m_by_observer[observer_ip] = Report{observed_ip, now};
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
