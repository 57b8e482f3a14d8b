#include "daemon/net/call_rates.hpp"

#include <algorithm>

namespace p2pd::net {

CallRates::Entry& CallRates::entry(const std::string& key, std::uint64_t rate, Clock::time_point now) {
  auto it = m_entries.find(key);
  if (it == m_entries.end()) {
    it = m_entries.emplace(key, Entry{TokenBucket(rate, 2 * rate, now), now}).first;
  }
  return it->second;
}

void CallRates::make_room(Clock::time_point now) {
  // A bucket idle long enough to be full again remembers nothing: forget
  // those; if none is, the one used longest ago.
  const auto refill_time = std::chrono::seconds(3);  // a burst is two seconds' worth
  for (auto it = m_entries.begin(); it != m_entries.end();) {
    it = now - it->second.used > refill_time ? m_entries.erase(it) : std::next(it);
  }
  while (!m_entries.empty() && m_entries.size() + 2 > m_rules.max_tracked) {
    auto oldest = std::min_element(m_entries.begin(), m_entries.end(),
                                   [](const auto& a, const auto& b) { return a.second.used < b.second.used; });
    m_entries.erase(oldest);
  }
}

bool CallRates::admit(const std::string& node, const std::string& address, Clock::time_point now) {
  const std::uint64_t rate = m_rules.calls_per_second;
  std::lock_guard lock(m_mutex);
  // Room first: the references below must outlive any eviction.
  if (m_entries.size() + 2 > m_rules.max_tracked) make_room(now);
  Entry& by_node = entry("node " + node, rate, now);
  if (by_node.bucket.take(1, now) == 0) {
    ++m_refused;
    return false;
  }
  by_node.used = now;
  if (address.empty()) return true;
  Entry& by_address = entry("address " + address, rate * kAddressRateFactor, now);
  if (by_address.bucket.take(1, now) == 0) {
    // Not charged to the node: it was within its own rate.
    by_node.bucket.refund(1);
    ++m_refused;
    return false;
  }
  by_address.used = now;
  return true;
}

std::uint64_t CallRates::refused() const {
  std::lock_guard lock(m_mutex);
  return m_refused;
}

std::size_t CallRates::tracked() const {
  std::lock_guard lock(m_mutex);
  return m_entries.size();
}

}  // namespace p2pd::net
