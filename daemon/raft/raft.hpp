#pragma once
// The Raft core, sans-IO (DESIGN.md): tick() and step() in; a Ready out with,
// in this order for the driver, the state to persist (hard state, log
// suffix), the messages to send, and the entries newly committed. It
// implements leader election with randomized timeouts, pre-vote and
// check-quorum (Ongaro's thesis §9.6, §6.2), log replication with the
// conflict-term backtracking of §5.3, leadership transfer (§3.10) and
// single-server voter changes (§4.1: a node uses the latest voter set in its
// log, committed or not; one change at a time), learners that replicate the
// log without voting (§4.2.1), and log compaction by snapshots sent to
// followers in chunks (§5.1).

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/rng.hpp"
#include "daemon/raft/messages.hpp"

namespace p2pd::raft {

struct RaftConfig {
  // etcd's defaults at p2pd's 50 ms tick: heartbeat 100 ms, election 1 s
  // randomized up to 2 s: a timeout is drawn in [election, election + jitter].
  std::uint32_t heartbeat_ticks = 2;
  std::uint32_t election_ticks = 20;
  std::uint32_t election_jitter_ticks = 19;
  bool pre_vote = true;
  bool check_quorum = true;
  std::size_t max_entries_per_append = 64;
  std::size_t snapshot_chunk_bytes = 1u << 20;
  // A snapshot announced larger than this is refused: it bounds what a
  // leader can make a follower buffer.
  std::uint64_t max_snapshot_bytes = 256ull << 20;
};

enum class Role { follower, pre_candidate, candidate, leader };
std::string_view to_string(Role role);

struct Ready {
  std::optional<HardState> hard_state;  // changed: persist it
  // Entries from this index on were replaced (a follower's conflicting
  // suffix): drop them from disk before appending.
  std::optional<Index> truncate_from;
  std::vector<Entry> append;       // persist after the truncation
  std::vector<Envelope> messages;  // send only once the above is durable
  // A new snapshot: persist it before the log changes above. When
  // `restore_snapshot` is set it came from the leader and replaces the state
  // machine (before `committed` is applied); otherwise it is the driver's
  // own compaction.
  std::optional<Snapshot> snapshot;
  bool restore_snapshot = false;
  std::vector<Entry> committed;  // apply in order
  [[nodiscard]] bool empty() const {
    return !hard_state && !truncate_from && append.empty() && messages.empty() && committed.empty() && !snapshot;
  }
};

// What the leader knows of one follower, for the driver's voter policy.
struct FollowerProgress {
  Index match = 0;
  std::uint32_t silent_ticks = 0;  // since it last answered (or since this leader began)
  bool voter = false;
  bool answered = false;  // it answered this leader at least once
};

class Raft {
 public:
  // `hard_state`, `log` and `snapshot` are what was persisted (empty for a
  // new node; the log holds the entries after the snapshot); `voters` is
  // the set in force when neither names one. `seed` drives the randomized
  // election timeouts.
  Raft(NodeId self, std::vector<NodeId> voters, RaftConfig config, std::uint64_t seed, HardState hard_state = {},
       std::vector<Entry> log = {}, Snapshot snapshot = {});

  void tick();
  void step(const NodeId& from, const Message& message);
  // Appends a command to the leader's log; the index it will commit at, or
  // an error naming the leader when this node is not it.
  Result<Index> propose(std::string command);
  // Hands leadership to `to` (a voter): it is brought up to date and told
  // to campaign at once. Proposals are refused meanwhile; the transfer is
  // abandoned after an election timeout.
  Result<void> transfer_leadership(const NodeId& to);
  // Adds or removes one voter (§4.1); refused while an earlier change is
  // not committed. A leader that removes itself steps down once the change
  // commits.
  Result<Index> add_voter(const NodeId& id);
  Result<Index> remove_voter(const NodeId& id);
  // Peers the leader replicates to without counting them: they follow the
  // log and know the leader. Voters among them are ignored.
  void set_learners(std::vector<NodeId> learners);
  // Replaces the log up to `index` (applied already) by the state machine
  // `data` as of that index.
  Result<void> compact(Index index, std::string data);
  Ready take_ready();

  [[nodiscard]] Role role() const { return m_role; }
  [[nodiscard]] Term term() const { return m_hard.term; }
  [[nodiscard]] const std::optional<NodeId>& leader() const { return m_leader; }
  [[nodiscard]] Index commit_index() const { return m_commit; }
  [[nodiscard]] Index last_index() const { return m_snapshot.index + m_log.size(); }
  [[nodiscard]] Term last_term() const { return m_log.empty() ? m_snapshot.term : m_log.back().term; }
  [[nodiscard]] Index applied_index() const { return m_applied; }
  // The entries after the snapshot; entry(i) for snapshot_index() < i <= last_index().
  [[nodiscard]] const std::vector<Entry>& log() const { return m_log; }
  [[nodiscard]] const Entry& entry(Index index) const { return m_log[index - m_snapshot.index - 1]; }
  [[nodiscard]] Index snapshot_index() const { return m_snapshot.index; }
  [[nodiscard]] const Snapshot& snapshot() const { return m_snapshot; }
  [[nodiscard]] const std::vector<NodeId>& voters() const { return m_voters; }
  [[nodiscard]] const std::vector<NodeId>& learners() const { return m_learners; }
  [[nodiscard]] bool is_voter(const NodeId& id) const;
  [[nodiscard]] const NodeId& self() const { return m_self; }
  // Leader only: every follower it replicates to.
  [[nodiscard]] std::map<NodeId, FollowerProgress> followers() const;
  // The voter change not yet committed, if any.
  [[nodiscard]] bool voter_change_pending() const { return m_config_index > m_commit; }

 private:
  struct Progress {
    Index next = 1;
    Index match = 0;
    bool recent_active = false;  // heard from since the last check-quorum round
    std::uint32_t silent_ticks = 0;
    std::uint64_t snapshot_offset = 0;  // bytes of our snapshot it holds
    bool answered = false;
    Index commit_sent = 0;  // the highest commit index an append to it carried
  };

  // The term of the entry at `index`: the snapshot's at its index, 0 for 0,
  // past the end or compacted away.
  [[nodiscard]] Term term_at(Index index) const;
  [[nodiscard]] std::size_t quorum() const { return m_voters.size() / 2 + 1; }
  [[nodiscard]] bool log_up_to_date(Index last_index, Term last_term) const;
  void reset_election_timer();
  void become_follower(Term term, std::optional<NodeId> leader);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void campaign(bool pre_vote, bool transfer = false);
  void set_term(Term term);
  void send(const NodeId& to, Message message);
  void send_append(const NodeId& to);
  void send_snapshot_chunk(const NodeId& to, Progress& p);
  // Leader: the progress of a follower that just answered, marked live;
  // nullptr when we do not lead or do not replicate to it.
  Progress* answered_by(const NodeId& from);
  // It holds our log up to `match`: commit what that allows. False when
  // that committed our own removal (we no longer lead; `p` is gone).
  bool raise_match(Progress& p, Index match);
  void broadcast_append();
  // Tells every caught-up follower of a commit index it has not been sent,
  // with an empty append, instead of leaving it to the next heartbeat.
  void notify_commit();
  // Leader: progress for every voter and learner, none for anyone else.
  void refresh_progress();
  void advance_commit();
  void append_local(Entry entry);
  Result<Index> change_voters(std::vector<NodeId> voters);
  // The voter set of the latest config entry in the log, else the initial one.
  void refresh_voters();

  void on_request_vote(const NodeId& from, const RequestVote& m);
  void on_vote_reply(const NodeId& from, const RequestVoteReply& m);
  void on_append(const NodeId& from, const AppendEntries& m);
  void on_append_reply(const NodeId& from, const AppendEntriesReply& m);
  void on_install_snapshot(const NodeId& from, const InstallSnapshot& m);
  void on_install_snapshot_reply(const NodeId& from, const InstallSnapshotReply& m);

  NodeId m_self;
  std::vector<NodeId> m_initial_voters;
  std::vector<NodeId> m_voters;
  std::vector<NodeId> m_learners;
  Index m_config_index = 0;  // the log index of the voter set in force (0: initial)
  RaftConfig m_config;
  Rng m_rng;
  HardState m_hard;
  HardState m_persisted_hard;
  Snapshot m_snapshot;
  std::vector<Entry> m_log;  // m_log[i] has index m_snapshot.index + i + 1
  Snapshot m_receiving;      // follower: a snapshot arriving in chunks
  std::optional<Snapshot> m_snapshot_for_ready;
  bool m_restore_snapshot = false;
  Index m_commit = 0;
  Index m_applied = 0;
  Role m_role = Role::follower;
  std::optional<NodeId> m_leader;
  std::uint32_t m_election_elapsed = 0;
  std::uint32_t m_election_timeout = 0;  // randomized per term
  std::uint32_t m_heartbeat_elapsed = 0;
  std::set<NodeId> m_votes;
  std::optional<NodeId> m_transferee;  // leader only: handing leadership over
  std::uint32_t m_transfer_elapsed = 0;
  std::map<NodeId, Progress> m_progress;  // leader only
  std::optional<Index> m_truncated_from;
  Index m_unpersisted_from = 1;  // entries from here on are not in a Ready yet
  std::vector<Envelope> m_outbox;
};

}  // namespace p2pd::raft
