#pragma once
// Misbehaviour scores by address (address_key: IPv4, or an IPv6 /64),
// after Bitcoin Core's Misbehaving(): a peer whose call our checks refuse as
// malformed earns points; at the ban score its address is banned for a
// while: its connections are closed and new ones refused as they are
// accepted. Scores halve every half-life, so a peer that slipped once is
// not banned for it days later, and one that does now and then never is;
// only a steady stream is. What is not the sender's fault (a message meant
// for the node that used to be at this address, a message type from a newer
// version, our own damaged data) is not answered INVALID_ARGUMENT and does
// not count. Connections past the cap cost nothing: they are refused anyway,
// and many honest peers may share one address behind a NAT.
// Time is passed in (sans-IO); thread-safe, since gRPC threads score calls.

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace p2pd::net {

struct ScoreRules {
  double ban_score = 100;
  std::chrono::steady_clock::duration half_life = std::chrono::minutes(10);
  std::chrono::steady_clock::duration ban_duration = std::chrono::minutes(10);
  std::size_t max_addresses = 4096;  // past it, the lowest score is forgotten
};

// What a call refused as malformed costs.
inline constexpr double kMalformedMessagePoints = 10;

class PeerScores {
 public:
  using Clock = std::chrono::steady_clock;
  explicit PeerScores(ScoreRules rules = {}) : m_rules(rules) {}

  // Adds `points` to `address`; true when this bans it (the caller then
  // disconnects it and logs `why`). An address already banned stays so
  // until its ban ends.
  bool penalize(const std::string& address, double points, Clock::time_point now);
  [[nodiscard]] bool banned(const std::string& address, Clock::time_point now) const;
  // The decayed score now (0 for an address never penalized).
  [[nodiscard]] double score(const std::string& address, Clock::time_point now) const;
  [[nodiscard]] const ScoreRules& rules() const { return m_rules; }

 private:
  struct Entry {
    double score = 0;
    Clock::time_point scored_at{};
    Clock::time_point banned_until{};
  };
  double decayed(const Entry& entry, Clock::time_point now) const;
  void forget_one(Clock::time_point now);

  const ScoreRules m_rules;
  mutable std::mutex m_mutex;
  std::map<std::string, Entry, std::less<>> m_entries;
};

}  // namespace p2pd::net
