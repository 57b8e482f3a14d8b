#pragma once
// The Chord ring-maintenance core, sans-IO (DESIGN.md): values in (tick,
// receive, join/create), values out (messages, state). It implements the
// corrected maintenance of Zave, "Reasoning about identifier spaces: How to
// make Chord correct" (IEEE TSE 2017):
//   - a successor list of length r (§4.1), never empty while a member;
//   - join copies the successor list of its successor (§4.2);
//   - stabilize asks the first successor for its predecessor and list, and
//     adopts a closer successor only after that node has answered (§4.4:
//     never adopt a node without checking it is alive);
//   - notify is judged by rectify: a predecessor is replaced by a closer
//     notifier, or by any notifier once it stopped answering pings (§4.3).
// Fingers and iterative lookups build on this (issue 3, next step).

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "daemon/chord/messages.hpp"

namespace p2pd::chord {

struct RingConfig {
  std::size_t successor_list_length = 8;  // Zave's r
  std::uint32_t stabilize_interval_ticks = 10;
  std::uint32_t ping_interval_ticks = 20;
  std::uint32_t request_timeout_ticks = 20;
  std::uint32_t rejoin_backoff_ticks = 40;
  // Consecutive unanswered requests before a neighbour is taken for dead: a
  // single lost datagram must not evict a live node (under 2% loss a
  // request/reply pair is lost 4% of the time; three in a row, 0.006%).
  std::uint32_t failures_before_dead = 3;
};

// Bounds on what a peer may send (validated, never asserted).
inline constexpr std::size_t kMaxAddrLength = 300;
inline constexpr std::size_t kMaxSuccessorsAccepted = 64;

class Ring {
 public:
  Ring(Peer self, RingConfig config);

  // Start a new ring of one.
  void create();
  // Join the ring through any member's address; keeps retrying (with
  // backoff) until a successor answers.
  void join(std::string bootstrap_addr);

  void tick();
  void receive(const Peer& from, const Message& message);
  std::vector<Outgoing> take_outbox();

  [[nodiscard]] bool is_member() const { return m_member; }
  [[nodiscard]] const Peer& self() const { return m_self; }
  [[nodiscard]] const std::optional<Peer>& predecessor() const { return m_predecessor; }
  // Nearest first; never empty once a member (self when alone).
  [[nodiscard]] const std::vector<Peer>& successors() const { return m_successors; }
  // Times this node had to rejoin because every successor had died.
  [[nodiscard]] std::uint64_t rejoins() const { return m_rejoins; }

 private:
  enum class Purpose { join_walk, stabilize_successor, stabilize_candidate, check_predecessor };
  struct Pending {
    Purpose purpose;
    std::string addr;            // whom we asked
    std::optional<Peer> peer;    // and who we believe it is (unknown for a bootstrap)
    std::uint64_t deadline = 0;  // tick
  };

  std::uint64_t send_request(Purpose purpose, const std::string& addr, std::optional<Peer> peer,
                             const Message& message);
  void start_stabilize();
  void on_neighbors(const Peer& from, const Pending& pending, const Neighbors& reply);
  void on_join_step(const Peer& from, const std::vector<Peer>& successors);
  void on_timeout(const Pending& pending);
  void on_pong(const Pending& pending);
  void adopt_successors(const Peer& first, const std::vector<Peer>& rest);
  void rectify(const Peer& notifier);
  // The first successor is dead or left the ring: the next one takes its
  // place; with none left, rejoin.
  void drop_first_successor();
  void rejoin();
  bool has_pending(Purpose purpose) const;
  std::vector<Peer> sanitize(const std::vector<Peer>& peers) const;

  Peer m_self;
  RingConfig m_config;
  bool m_member = false;
  std::optional<std::string> m_bootstrap;  // as configured; the fallback of every join
  std::optional<std::string> m_join_via;   // where the current join walk starts
  std::optional<Peer> m_predecessor;
  std::vector<Peer> m_successors;
  std::map<std::uint64_t, Pending> m_pending;  // ordered: deterministic timeouts
  std::vector<Outgoing> m_outbox;
  std::uint64_t m_now = 0;
  std::uint64_t m_next_request_id = 1;
  std::uint64_t m_next_stabilize = 0;
  std::uint64_t m_next_ping = 0;
  std::uint64_t m_next_join_attempt = 0;
  bool m_joining = false;
  std::uint64_t m_rejoins = 0;
  std::uint32_t m_successor_failures = 0;    // consecutive, for successors().front()
  std::uint32_t m_predecessor_failures = 0;  // consecutive, for predecessor()
};

}  // namespace p2pd::chord
