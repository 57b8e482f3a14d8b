#pragma once
// The Chord ring-maintenance core, sans-IO (DESIGN.md): values in (tick,
// receive, join/create), values out (messages, state). It implements the
// corrected maintenance of Zave, "Reasoning about identifier spaces: How to
// make Chord correct" (IEEE TSE 2017):
//   - a successor list of length r (§4.1), never empty while a member;
//   - join routes to its best predecessor (iterative FindSuccessor of its
//     own id), checks that the successor it names is alive, and copies
//     that successor's list (§4.2);
//   - stabilize asks the first successor for its predecessor and list, and
//     adopts a closer successor only after that node has answered (§4.4:
//     never adopt a node without checking it is alive);
//   - notify is judged by rectify: a predecessor is replaced by a closer
//     notifier, or by any notifier once it stopped answering pings (§4.3).
// On that ring it keeps fingers (Stoica et al., SIGCOMM 2001, §4.3:
// finger[i] = successor(self + 2^i), refreshed by fix_fingers) and runs
// iterative lookups that route around nodes that do not answer
// (ring_lookup.cpp).

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
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
  // One finger refreshed per this many ticks (fix_fingers, §4.3). Fingers
  // that fall inside (self, successor] are set locally and cost nothing, so
  // a round costs about log2 N lookups.
  std::uint32_t fix_fingers_interval_ticks = 2;
  // Pause between two rounds over all fingers.
  std::uint32_t finger_round_interval_ticks = 100;
  // Route through the successor list as well as the fingers. Off, routing
  // is the paper's (fingers only): the benchmark compares the two.
  bool route_through_successors = true;
  // Lookups in flight at once (user lookups beyond this are refused).
  std::size_t max_lookups_in_flight = 1024;
};

// The answer to a lookup: the owner of `key` and the nodes after it (who
// hold its replicas), and the path taken (the nodes asked, in order).
struct LookupResult {
  std::uint64_t lookup_id = 0;
  NodeId key;
  bool ok = false;
  std::string error;          // why not, when !ok
  std::vector<Peer> holders;  // owner first
  std::vector<Peer> path;     // hops = path.size()
};

struct Finger {
  NodeId start;  // self + 2^i
  Peer node;     // successor(start), as last looked up
};

class Ring {
 public:
  Ring(Peer self, RingConfig config);

  // Start a new ring of one.
  void create();
  // Join the ring through any member's address; keeps retrying (with
  // backoff) until a successor answers.
  void join(std::string bootstrap_addr);

  // Graceful departure: tell the predecessor and successor, then stop.
  void leave();

  void tick();
  // Delivers one message. For a request, returns the reply to send back to
  // `from` (over the same RPC in p2pd); otherwise nullopt.
  std::optional<Message> receive(const Peer& from, const Message& message);
  std::vector<Outgoing> take_outbox();

  // Starts an iterative lookup of the node that owns `key`; its result comes
  // out of take_lookup_results() (at once when this node knows the answer).
  std::uint64_t start_lookup(const NodeId& key);
  std::vector<LookupResult> take_lookup_results();
  // The fingers that are set, lowest start first.
  [[nodiscard]] std::vector<Finger> fingers() const;
  // Every distinct peer this node currently routes through.
  [[nodiscard]] std::vector<Peer> known_peers() const;
  [[nodiscard]] bool has_left() const { return m_left; }

  [[nodiscard]] bool is_member() const { return m_member; }
  // A member that lost every successor and is walking back to its place.
  [[nodiscard]] bool is_repairing() const { return m_member && m_joining; }
  [[nodiscard]] const Peer& self() const { return m_self; }
  [[nodiscard]] const std::optional<Peer>& predecessor() const { return m_predecessor; }
  // Nearest first; never empty once a member (self when alone).
  [[nodiscard]] const std::vector<Peer>& successors() const { return m_successors; }
  // Times this node had to rejoin because every successor had died.
  [[nodiscard]] std::uint64_t rejoins() const { return m_rejoins; }

 private:
  enum class Purpose {
    join_walk,
    join_confirm,
    stabilize_successor,
    stabilize_candidate,
    check_predecessor,
    lookup_hop
  };
  struct Pending {
    Purpose purpose;
    std::string addr;             // whom we asked
    std::optional<Peer> peer;     // and who we believe it is (unknown for a bootstrap)
    std::uint64_t deadline = 0;   // tick
    std::uint64_t lookup_id = 0;  // for lookup_hop
  };
  struct Lookup {
    NodeId key;
    std::optional<std::size_t> finger;  // set: fix_fingers' own lookup of this finger
    std::vector<Peer> candidates;       // closest preceding the key first
    std::set<std::string> asked;        // addresses, so no node is asked twice
    std::vector<Peer> path;
    std::uint32_t timeouts = 0;
  };

  std::uint64_t send_request(Purpose purpose, const std::string& addr, std::optional<Peer> peer,
                             const Message& message);
  void start_stabilize();
  void on_neighbors(const Peer& from, const Pending& pending, const Neighbors& reply);
  void on_join_step(const Peer& from, const FoundSuccessor& reply);
  // Asks the next node the join walk ended with whether it is alive (join_confirm).
  void confirm_next_join_candidate();
  void on_timeout(const Pending& pending);
  void on_pong(const Pending& pending);
  void adopt_successors(const Peer& first, const std::vector<Peer>& rest);
  void rectify(const Peer& notifier);
  // The first successor is dead or left the ring: the next one takes its
  // place; with none left, rejoin.
  void drop_first_successor();
  void rejoin();
  bool has_pending(Purpose purpose) const;
  template <class Reply>
  static bool answers(Purpose purpose);
  static constexpr std::uint32_t kRepairWalksBeforeAlone = 3;
  std::vector<Peer> sanitize(const std::vector<Peer>& peers) const;
  void on_leaving(const Peer& from, const Leaving& leaving);
  void forget(const std::string& addr);

  // ring_lookup.cpp
  FoundSuccessor answer_find_successor(const FindSuccessor& request) const;
  // The owner of a key in (self, successor] and the nodes after it.
  std::vector<Peer> holders_after_self() const;
  std::vector<Peer> closest_preceding(const NodeId& key, std::size_t count) const;
  std::uint64_t begin_lookup(const NodeId& key, std::optional<std::size_t> finger);
  void advance_lookup(std::uint64_t lookup_id);
  void on_found_successor(const Peer& from, const Pending& pending, const FoundSuccessor& reply);
  void on_lookup_timeout(const Pending& pending);
  void finish_lookup(std::uint64_t lookup_id, bool ok, std::string error, std::vector<Peer> holders);
  void fix_fingers();
  void on_finger_found(std::size_t index, const std::vector<Peer>& holders);
  // Moves the fix_fingers cursor; false when that ended a round.
  bool next_finger_after(std::size_t index);

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
  bool m_left = false;
  std::vector<Peer> m_join_candidates;  // successors to confirm, nearest first
  std::uint32_t m_repair_walks = 0;     // failed join walks in a row while repairing
  bool m_successors_wrapped = false;    // the list ends where the ring wraps back to us

  std::vector<std::optional<Peer>> m_fingers;  // NodeId::kBits entries
  std::size_t m_next_finger = 0;
  std::uint64_t m_next_fix_fingers = 0;
  bool m_fixing_finger = false;
  std::map<std::uint64_t, Lookup> m_lookups;
  std::uint64_t m_next_lookup_id = 1;
  std::vector<LookupResult> m_lookup_results;
};

}  // namespace p2pd::chord
