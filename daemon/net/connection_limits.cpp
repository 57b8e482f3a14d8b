#include "daemon/net/connection_limits.hpp"

#include <atomic>

namespace p2pd::net {
namespace {

std::atomic<ConnectionId> g_next_connection_id{1};

}  // namespace

ConnectionLimits::ConnectionLimits(ConnectionCaps caps) : m_caps(caps) {}

ConnectionLimits::Admission ConnectionLimits::admit(const std::string& address) {
  if (auto it = m_by_address.find(address); it != m_by_address.end() && it->second.size() >= m_caps.per_address) {
    return {Verdict::too_many_from_address};
  }
  if (m_address_of.size() >= m_caps.total) return {Verdict::too_many};
  const ConnectionId id = g_next_connection_id.fetch_add(1, std::memory_order_relaxed);
  m_by_address[address].push_back(id);
  m_address_of.emplace(id, address);
  return {Verdict::admitted, id};
}

bool ConnectionLimits::forget(ConnectionId id) {
  const auto it = m_address_of.find(id);
  if (it == m_address_of.end()) return false;
  const auto from = m_by_address.find(it->second);
  if (from != m_by_address.end()) {
    std::erase(from->second, id);
    if (from->second.empty()) m_by_address.erase(from);
  }
  m_address_of.erase(it);
  return true;
}

std::vector<ConnectionId> ConnectionLimits::connections_of(const std::string& address) const {
  auto it = m_by_address.find(address);
  return it == m_by_address.end() ? std::vector<ConnectionId>{} : it->second;
}

}  // namespace p2pd::net
