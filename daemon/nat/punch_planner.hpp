#pragma once
// When to try a direct connection to a peer reached through a relay (TCP
// hole punching: RFC 5128 section 3.3, "TCP simultaneous open"; the
// coordination follows libp2p's DCUtR). Sans-IO: the node says which
// relayed peers it talks to and how each attempt ended; the planner says
// which attempt to start next. A failed attempt is retried at once a few
// times (a SYN lost to timing), then rounds back off, so a pair of
// symmetric NATs costs a few SYNs every ten minutes, not a stream of them.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace p2pd::nat {

class PunchPlanner {
 public:
  static constexpr std::uint32_t kAttemptsPerRound = 3;
  static constexpr std::size_t kMaxConcurrent = 2;
  static constexpr std::uint64_t kRetryTicks = 20;                 // 1 s between attempts of a round
  static constexpr std::uint64_t kFirstBackoffTicks = 30 * 20;     // after the first failed round
  static constexpr std::uint64_t kMaxBackoffTicks = 10 * 60 * 20;  // rounds at least this often
  static constexpr std::uint64_t kAfterLossTicks = 5 * 20;         // a punched connection broke: doubling
  static constexpr std::uint64_t kStableTicks = 10 * 60 * 20;      // punched this long: its losses are forgiven

  enum class State { waiting, punching, punched, failed };

  struct Peer {
    State state = State::waiting;
    std::uint32_t attempt = 0;        // attempts made in this round (punched: that it took)
    std::uint32_t failed_rounds = 0;  // in a row
    std::uint64_t next_tick = 0;      // when the next attempt may start
    std::string last_error;
    std::uint32_t losses = 0;  // punched connections that broke soon after
    std::uint64_t punched_tick = 0;
  };

  struct Start {
    std::string peer;
    std::uint32_t attempt = 0;  // 1..kAttemptsPerRound
  };

  // `relayed`: the relayed peers this node talks to now (addresses). Peers
  // that left it are forgotten, except one being punched, which is
  // forgotten when its attempt ends.
  std::vector<Start> tick(std::uint64_t now, const std::vector<std::string>& relayed);
  // An attempt started by tick ended. True when its round is over: it
  // worked, or it was the round's last attempt.
  bool on_result(const std::string& peer, bool punched, std::string detail, std::uint64_t now);
  // The direct connection broke: traffic is back on the relay; punch again soon.
  void on_lost(const std::string& peer, std::uint64_t now);
  // An operator asked (p2pctl punch): a new round at the next tick, unless
  // one is running.
  void request(const std::string& peer, std::uint64_t now);

  [[nodiscard]] const std::map<std::string, Peer>& peers() const { return m_peers; }
  [[nodiscard]] std::uint64_t attempts() const { return m_attempts; }
  [[nodiscard]] std::uint64_t successes() const { return m_successes; }

 private:
  void end_attempt(Peer& peer);

  std::map<std::string, Peer> m_peers;
  std::size_t m_in_flight = 0;
  std::uint64_t m_attempts = 0;
  std::uint64_t m_successes = 0;
};

std::string_view to_string(PunchPlanner::State state);

}  // namespace p2pd::nat
