#include "daemon/net/connection_limits.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <utility>

namespace p2pd::net {

ConnectionLimits::ConnectionLimits(ConnectionCaps caps, IsOpen is_open) : m_caps(caps), m_is_open(std::move(is_open)) {}

ConnectionLimits::Verdict ConnectionLimits::admit(const std::string& address, Connection connection,
                                                  std::chrono::steady_clock::time_point now) {
  auto& from_address = m_by_address[address];
  if (from_address.size() >= m_caps.per_address) forget_closed(from_address);
  if (from_address.size() >= m_caps.per_address) return Verdict::too_many_from_address;
  if (m_total >= m_caps.total && (!m_last_full_check || now - *m_last_full_check >= std::chrono::seconds(1))) {
    m_last_full_check = now;
    forget_all_closed();  // may erase `from_address` when empty
  }
  if (m_total >= m_caps.total) {
    if (auto it = m_by_address.find(address); it != m_by_address.end() && it->second.empty()) m_by_address.erase(it);
    return Verdict::too_many;
  }
  m_by_address[address].push_back(connection);
  ++m_total;
  return Verdict::admitted;
}

std::vector<ConnectionLimits::Connection> ConnectionLimits::connections_of(const std::string& address) const {
  auto it = m_by_address.find(address);
  return it == m_by_address.end() ? std::vector<Connection>{} : it->second;
}

void ConnectionLimits::forget_closed(std::vector<Connection>& connections) {
  const auto before = connections.size();
  std::erase_if(connections, [&](const Connection& c) { return !m_is_open(c); });
  m_total -= before - connections.size();
}

void ConnectionLimits::forget_all_closed() {
  for (auto it = m_by_address.begin(); it != m_by_address.end();) {
    forget_closed(it->second);
    it = it->second.empty() ? m_by_address.erase(it) : std::next(it);
  }
}

bool descriptor_names_socket(const ConnectionLimits::Connection& connection) {
  struct stat st {};
  return ::fstat(connection.fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == connection.inode;
}

}  // namespace p2pd::net
