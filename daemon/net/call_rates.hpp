#pragma once
// Calls a peer may make (--peer-call-rate): a token bucket per proven node
// id, and one per address the connection was accepted from at four times
// the rate (a NAT may hide several peers; ids are cheap to make, addresses
// are not). A call past either is refused RESOURCE_EXHAUSTED, and, for an
// accepted connection, costs its address over_rate_points (peer_scores.hpp):
// a peer that keeps calling past its limit is banned and cut off. Honest
// peers stay far below: Raft heartbeats, Chord maintenance and blob
// transfers make tens of calls a second between two nodes.
// Time is passed in (sans-IO); thread-safe, since gRPC threads admit calls.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "common/token_bucket.hpp"

namespace p2pd::net {

struct CallRateRules {
  std::uint32_t calls_per_second = 1000;  // per node id; bursts of twice this
  std::size_t max_tracked = 8192;         // buckets kept; past it, idle ones (full again) go first
};

// What a call past the rate costs its address: a ban (100 points) takes
// twenty seconds' worth of refused calls, so an honest node's burst (a
// leader's queued appends reaching a follower back from a pause) never
// earns one, and a flood earns it in moments.
inline constexpr double kOverRateSecondsToBan = 20;
inline double over_rate_points(std::uint32_t calls_per_second) {
  return 100.0 / (kOverRateSecondsToBan * calls_per_second);
}
inline constexpr std::uint32_t kAddressRateFactor = 4;

class CallRates {
 public:
  using Clock = std::chrono::steady_clock;
  explicit CallRates(CallRateRules rules = {}) : m_rules(rules) {}

  // Takes one call from `node`'s bucket and, when `address` is not empty,
  // from the address's: false (and nothing taken) when either is empty.
  bool admit(const std::string& node, const std::string& address, Clock::time_point now);
  [[nodiscard]] const CallRateRules& rules() const { return m_rules; }
  [[nodiscard]] std::uint64_t refused() const;
  [[nodiscard]] std::size_t tracked() const;

 private:
  struct Entry {
    TokenBucket bucket;
    Clock::time_point used;
  };
  Entry& entry(const std::string& key, std::uint64_t rate, Clock::time_point now);
  void make_room(Clock::time_point now);

  const CallRateRules m_rules;
  mutable std::mutex m_mutex;
  std::map<std::string, Entry> m_entries;
  std::uint64_t m_refused = 0;
};

}  // namespace p2pd::net
