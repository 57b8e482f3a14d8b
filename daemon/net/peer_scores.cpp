#include "daemon/net/peer_scores.hpp"

#include <cmath>
#include <limits>

namespace p2pd::net {

double PeerScores::decayed(const Entry& entry, Clock::time_point now) const {
  if (now <= entry.scored_at) return entry.score;
  const double half_lives =
      std::chrono::duration<double>(now - entry.scored_at) / std::chrono::duration<double>(m_rules.half_life);
  return entry.score * std::exp2(-half_lives);
}

bool PeerScores::penalize(const std::string& address, double points, Clock::time_point now) {
  std::lock_guard lock(m_mutex);
  auto it = m_entries.find(address);
  if (it == m_entries.end()) {
    if (m_entries.size() >= m_rules.max_addresses) forget_one(now);
    it = m_entries.emplace(address, Entry{}).first;
  }
  Entry& entry = it->second;
  if (now < entry.banned_until) return false;  // banned already
  entry.score = decayed(entry, now) + points;
  entry.scored_at = now;
  if (entry.score < m_rules.ban_score) return false;
  entry.banned_until = now + m_rules.ban_duration;
  entry.score = 0;  // a clean slate once the ban ends
  return true;
}

bool PeerScores::banned(const std::string& address, Clock::time_point now) const {
  std::lock_guard lock(m_mutex);
  auto it = m_entries.find(address);
  return it != m_entries.end() && now < it->second.banned_until;
}

double PeerScores::score(const std::string& address, Clock::time_point now) const {
  std::lock_guard lock(m_mutex);
  auto it = m_entries.find(address);
  return it == m_entries.end() ? 0 : decayed(it->second, now);
}

void PeerScores::forget_one(Clock::time_point now) {
  // The address that matters least: not banned, lowest score. A full table
  // of bans forgets the one ending first.
  auto victim = m_entries.end();
  double lowest = std::numeric_limits<double>::infinity();
  for (auto it = m_entries.begin(); it != m_entries.end(); ++it) {
    const bool is_banned = now < it->second.banned_until;
    const double weight = is_banned
                              ? m_rules.ban_score + std::chrono::duration<double>(it->second.banned_until - now).count()
                              : decayed(it->second, now);
    if (weight < lowest) {
      lowest = weight;
      victim = it;
    }
  }
  if (victim != m_entries.end()) m_entries.erase(victim);
}

}  // namespace p2pd::net
