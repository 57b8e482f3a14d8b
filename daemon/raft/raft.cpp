#include "daemon/raft/raft.hpp"

#include <algorithm>
#include <type_traits>
#include <utility>

namespace p2pd::raft {

std::string_view to_string(Role role) {
  switch (role) {
    case Role::follower: return "follower";
    case Role::pre_candidate: return "candidate";  // the contract's roles: a pre-candidate campaigns too
    case Role::candidate: return "candidate";
    case Role::leader: return "leader";
  }
  return "follower";
}

namespace {
std::vector<NodeId> sorted_unique(std::vector<NodeId> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}
}  // namespace

Raft::Raft(NodeId self, std::vector<NodeId> voters, RaftConfig config, std::uint64_t seed, HardState hard_state,
           std::vector<Entry> log, Snapshot snapshot)
    : m_self(self),
      m_initial_voters(sorted_unique(std::move(voters))),
      m_config(config),
      m_rng(seed),
      m_hard(std::move(hard_state)),
      m_persisted_hard(m_hard),
      m_snapshot(std::move(snapshot)),
      m_log(std::move(log)) {
  if (m_config.heartbeat_ticks == 0) m_config.heartbeat_ticks = 1;
  if (m_config.election_ticks <= m_config.heartbeat_ticks) m_config.election_ticks = m_config.heartbeat_ticks + 1;
  if (m_config.max_entries_per_append == 0) m_config.max_entries_per_append = 1;
  if (m_config.snapshot_chunk_bytes == 0) m_config.snapshot_chunk_bytes = 1;
  m_snapshot.voters = sorted_unique(std::move(m_snapshot.voters));
  // What was persisted is trusted only as far as it is consistent: the log
  // continues the snapshot, and nothing past it counts as committed.
  std::erase_if(m_log, [&](const Entry& e) { return e.index <= m_snapshot.index; });
  for (std::size_t i = 0; i < m_log.size(); ++i) {
    if (m_log[i].index != m_snapshot.index + 1 + i) {
      m_log.resize(i);
      break;
    }
  }
  m_unpersisted_from = last_index() + 1;
  m_hard.commit = std::clamp(m_hard.commit, m_snapshot.index, last_index());
  m_persisted_hard = m_hard;
  m_commit = m_hard.commit;
  m_applied = m_snapshot.index;
  refresh_voters();
  reset_election_timer();
}

void Raft::refresh_voters() {
  m_voters = m_snapshot.index > 0 ? m_snapshot.voters : m_initial_voters;
  m_config_index = m_snapshot.index;
  for (auto it = m_log.rbegin(); it != m_log.rend(); ++it) {
    if (it->kind != Entry::Kind::config) continue;
    if (auto voters = decode_voters(it->data)) {
      m_voters = sorted_unique(std::move(*voters));
      m_config_index = it->index;
    }
    break;
  }
  refresh_progress();
}

void Raft::refresh_progress() {
  if (m_role != Role::leader) return;
  // The leader replicates to every voter of the set in force and to the
  // learners; a new one starts where the leader's log ends (§5.3).
  auto track = [&](const NodeId& id) {
    if (id != m_self && !m_progress.contains(id)) m_progress[id] = Progress{last_index() + 1, 0, true, 0, 0};
  };
  for (const auto& voter : m_voters) track(voter);
  for (const auto& learner : m_learners) track(learner);
  std::erase_if(m_progress, [&](const auto& p) {
    return !is_voter(p.first) && !std::binary_search(m_learners.begin(), m_learners.end(), p.first);
  });
}

void Raft::set_learners(std::vector<NodeId> learners) {
  learners = sorted_unique(std::move(learners));
  std::erase_if(learners, [&](const NodeId& id) { return id == m_self || is_voter(id); });
  if (learners == m_learners) return;
  m_learners = std::move(learners);
  refresh_progress();
}

std::map<NodeId, FollowerProgress> Raft::followers() const {
  std::map<NodeId, FollowerProgress> out;
  if (m_role != Role::leader) return out;
  for (const auto& [id, p] : m_progress) out[id] = FollowerProgress{p.match, p.silent_ticks, is_voter(id), p.answered};
  return out;
}

Result<void> Raft::compact(Index index, std::string data) {
  if (index <= m_snapshot.index) return {};
  if (index > m_applied) {
    return make_error(ErrorCode::invalid_argument, "cannot compact to index {}: only {} is applied", index, m_applied);
  }
  // The voter set in force at `index`: its last config entry, else the
  // snapshot's (or the initial set).
  std::vector<NodeId> voters = m_snapshot.index > 0 ? m_snapshot.voters : m_initial_voters;
  for (Index i = index; i > m_snapshot.index; --i) {
    const Entry& e = entry(i);
    if (e.kind != Entry::Kind::config) continue;
    if (auto decoded = decode_voters(e.data)) voters = sorted_unique(std::move(*decoded));
    break;
  }
  const Term term = term_at(index);
  m_log.erase(m_log.begin(), m_log.begin() + static_cast<std::ptrdiff_t>(index - m_snapshot.index));
  m_snapshot = Snapshot{index, term, std::move(voters), std::move(data)};
  m_snapshot_for_ready = m_snapshot;
  m_restore_snapshot = false;
  return {};
}

Result<Index> Raft::add_voter(const NodeId& id) {
  if (is_voter(id)) return make_error(ErrorCode::already_exists, "{} is a voter already", id.hex());
  auto voters = m_voters;
  voters.push_back(id);
  return change_voters(std::move(voters));
}

Result<Index> Raft::remove_voter(const NodeId& id) {
  if (!is_voter(id)) return make_error(ErrorCode::not_found, "{} is not a voter", id.hex());
  if (m_voters.size() == 1) return make_error(ErrorCode::invalid_argument, "cannot remove the last voter");
  auto voters = m_voters;
  std::erase(voters, id);
  return change_voters(std::move(voters));
}

Result<Index> Raft::change_voters(std::vector<NodeId> voters) {
  if (m_role != Role::leader) return make_error(ErrorCode::unavailable, "not the leader");
  if (m_config_index > m_commit) {
    return make_error(ErrorCode::unavailable, "the previous voter change (index {}) is not committed yet",
                      m_config_index);
  }
  // The fix to single-server changes (Ongaro, raft-dev, 2015): a new leader
  // first commits an entry of its own term, so it cannot stack a change on
  // an uncommitted one of an earlier leader's.
  if (term_at(m_commit) != m_hard.term) {
    return make_error(ErrorCode::unavailable, "a new leader changes voters only once it has committed in its term");
  }
  const Index index = last_index() + 1;
  append_local(Entry{m_hard.term, index, Entry::Kind::config, encode_voters(voters)});
  refresh_voters();
  broadcast_append();
  advance_commit();
  return index;
}

Term Raft::term_at(Index index) const {
  if (index == m_snapshot.index) return m_snapshot.term;
  if (index < m_snapshot.index || index > last_index()) return 0;
  return entry(index).term;
}

bool Raft::is_voter(const NodeId& id) const {
  return std::binary_search(m_voters.begin(), m_voters.end(), id);
}

// §5.4.1: a vote goes only to a candidate whose log is at least as up to date.
bool Raft::log_up_to_date(Index last_index, Term last_term) const {
  return last_term > this->last_term() || (last_term == this->last_term() && last_index >= this->last_index());
}

void Raft::reset_election_timer() {
  m_election_elapsed = 0;
  // Randomized (§3.4, §9.3) so that split votes are rare.
  m_election_timeout =
      m_config.election_ticks + static_cast<std::uint32_t>(m_rng.uniform(0, m_config.election_jitter_ticks));
}

void Raft::set_term(Term term) {
  m_hard.term = term;
  m_hard.voted_for.reset();
}

void Raft::become_follower(Term term, std::optional<NodeId> leader) {
  if (term > m_hard.term) set_term(term);
  m_role = Role::follower;
  m_transferee.reset();
  m_leader = std::move(leader);
  m_votes.clear();
  m_progress.clear();
  reset_election_timer();
}

void Raft::tick() {
  if (m_role == Role::leader) {
    if (m_transferee && ++m_transfer_elapsed >= m_config.election_ticks) m_transferee.reset();  // give up
    for (auto& [id, progress] : m_progress) ++progress.silent_ticks;
    if (++m_heartbeat_elapsed >= m_config.heartbeat_ticks) {
      m_heartbeat_elapsed = 0;
      broadcast_append();
    }
    // Check-quorum (§6.2): a leader that has not heard from a majority for
    // an election timeout steps down, so a partitioned leader stops serving.
    if (++m_election_elapsed >= m_config.election_ticks) {
      m_election_elapsed = 0;
      if (m_config.check_quorum) {
        std::size_t active = 1;  // ourselves
        for (auto& [id, progress] : m_progress) {
          if (progress.recent_active && is_voter(id)) ++active;
          progress.recent_active = false;
        }
        if (active < quorum()) become_follower(m_hard.term, std::nullopt);
      }
    }
    return;
  }
  if (++m_election_elapsed >= m_election_timeout && is_voter(m_self)) campaign(m_config.pre_vote);
}

void Raft::campaign(bool pre_vote, bool transfer) {
  if (pre_vote) {
    // §9.6: ask first whether we could win, without raising our term, so a
    // node that was cut off cannot disrupt the cluster when it returns.
    m_role = Role::pre_candidate;
  } else {
    set_term(m_hard.term + 1);
    m_hard.voted_for = m_self;
    m_role = Role::candidate;
  }
  m_leader.reset();
  m_votes = {m_self};
  reset_election_timer();
  if (m_votes.size() >= quorum()) {
    if (pre_vote) {
      campaign(false);
    } else {
      become_leader();
    }
    return;
  }
  const Term term = pre_vote ? m_hard.term + 1 : m_hard.term;
  for (const auto& voter : m_voters) {
    if (voter != m_self) send(voter, RequestVote{term, last_index(), last_term(), pre_vote, transfer});
  }
}

void Raft::become_leader() {
  m_role = Role::leader;
  m_leader = m_self;
  m_votes.clear();
  m_progress.clear();
  refresh_progress();
  m_heartbeat_elapsed = 0;
  m_election_elapsed = 0;
  // An entry of the new term (§8): entries of earlier terms commit with it.
  // The first leader of a pool writes the voter set it was started with, so
  // from then on the log (or a snapshot) always names the voters.
  if (m_config_index == 0) {
    append_local(Entry{m_hard.term, last_index() + 1, Entry::Kind::config, encode_voters(m_voters)});
    m_config_index = last_index();
  } else {
    append_local(Entry{m_hard.term, last_index() + 1, Entry::Kind::noop, {}});
  }
  broadcast_append();
  advance_commit();
}

void Raft::append_local(Entry entry) {
  m_log.push_back(std::move(entry));
}

Result<Index> Raft::propose(std::string command) {
  if (m_role == Role::leader && m_transferee) {
    return make_error(ErrorCode::unavailable, "leadership is being handed to {}; try again shortly",
                      m_transferee->hex());
  }
  if (m_role != Role::leader) {
    if (m_leader) return make_error(ErrorCode::unavailable, "not the leader; the leader is {}", m_leader->hex());
    return make_error(ErrorCode::unavailable, "not the leader, and no leader is known");
  }
  const Index index = last_index() + 1;
  append_local(Entry{m_hard.term, index, Entry::Kind::command, std::move(command)});
  broadcast_append();
  advance_commit();
  return index;
}

Result<void> Raft::transfer_leadership(const NodeId& to) {
  if (m_role != Role::leader) return make_error(ErrorCode::unavailable, "not the leader");
  if (to == m_self) return {};
  if (!is_voter(to)) return make_error(ErrorCode::invalid_argument, "{} is not a voter", to.hex());
  m_transferee = to;
  m_transfer_elapsed = 0;
  const auto& p = m_progress.at(to);  // every voter has progress at the leader
  if (p.match == last_index()) {
    send(to, TimeoutNow{m_hard.term});
  } else {
    send_append(to);  // TimeoutNow follows once it has caught up
  }
  return {};
}

void Raft::send(const NodeId& to, Message message) {
  m_outbox.push_back(Envelope{to, std::move(message)});
}

void Raft::send_append(const NodeId& to) {
  auto it = m_progress.find(to);
  if (it == m_progress.end()) return;
  Progress& p = it->second;
  if (p.next <= m_snapshot.index) {
    // It needs entries we compacted away: it gets the snapshot instead.
    send_snapshot_chunk(to, p);
    return;
  }
  const Index prev = p.next - 1;
  AppendEntries append{m_hard.term, prev, term_at(prev), {}, m_commit};
  p.commit_sent = std::max(p.commit_sent, m_commit);
  for (Index i = p.next; i <= last_index() && append.entries.size() < m_config.max_entries_per_append; ++i) {
    append.entries.push_back(entry(i));
  }
  send(to, std::move(append));
}

void Raft::send_snapshot_chunk(const NodeId& to, Progress& p) {
  const std::uint64_t total = m_snapshot.data.size();
  p.snapshot_offset = std::min(p.snapshot_offset, total);
  const std::uint64_t size = std::min<std::uint64_t>(m_config.snapshot_chunk_bytes, total - p.snapshot_offset);
  send(to, InstallSnapshot{m_hard.term, m_snapshot.index, m_snapshot.term, m_snapshot.voters, total, p.snapshot_offset,
                           m_snapshot.data.substr(p.snapshot_offset, size)});
}

void Raft::broadcast_append() {
  for (const auto& [id, progress] : m_progress) send_append(id);
}

void Raft::notify_commit() {
  // As etcd's bcastAppend after maybeCommit: a follower that holds every
  // entry learns of their commitment now, so a client served by a follower
  // sees its command applied one round trip after the quorum, not up to a
  // heartbeat interval later. Followers with entries still in flight learn
  // it from the append their reply triggers.
  for (auto& [id, progress] : m_progress) {
    if (progress.next > last_index() && progress.commit_sent < m_commit) send_append(id);
  }
}

void Raft::advance_commit() {
  // §5.4.2 (Figure 8): only an entry of the current term commits by
  // counting replicas; earlier ones commit with it.
  for (Index n = last_index(); n > m_commit; --n) {
    if (term_at(n) != m_hard.term) break;
    std::size_t replicas = is_voter(m_self) ? 1 : 0;
    for (const auto& [id, progress] : m_progress) {
      if (progress.match >= n && is_voter(id)) ++replicas;
    }
    if (replicas >= quorum()) {
      m_commit = n;
      m_hard.commit = n;
      if (m_config_index != 0 && m_config_index <= m_commit && !is_voter(m_self)) {
        // We removed ourselves and that is committed (§4.2.2): hand over to
        // the most up-to-date remaining voter at once (§3.10), then step
        // down, so the pool is not without a leader for an election timeout.
        const NodeId* best = nullptr;
        Index best_match = 0;
        for (const auto& [id, progress] : m_progress) {
          if (is_voter(id) && (best == nullptr || progress.match > best_match)) {
            best = &id;
            best_match = progress.match;
          }
        }
        if (best != nullptr && best_match == last_index()) send(*best, TimeoutNow{m_hard.term});
        become_follower(m_hard.term, std::nullopt);
      }
      return;
    }
  }
}

void Raft::step(const NodeId& from, const Message& message) {
  if (from == m_self) return;
  const Term term = term_of(message);
  const auto* vote = std::get_if<RequestVote>(&message);
  const auto* vote_reply = std::get_if<RequestVoteReply>(&message);
  if (term > m_hard.term) {
    if (vote != nullptr) {
      // Leader stickiness (§4.2.3 with check-quorum): while we hear from a
      // live leader, a vote request is a disruption, not an election.
      const bool in_lease = m_config.check_quorum && m_leader && m_election_elapsed < m_config.election_ticks &&
                            !vote->leadership_transfer;
      if (in_lease) return;
      if (!vote->pre_vote) become_follower(term, std::nullopt);
    } else if (vote_reply != nullptr && vote_reply->pre_vote && vote_reply->granted) {
      // A granted pre-vote carries the term we would campaign with.
    } else {
      const bool from_leader =
          std::holds_alternative<AppendEntries>(message) || std::holds_alternative<InstallSnapshot>(message);
      become_follower(term, from_leader ? std::optional(from) : std::nullopt);
    }
  } else if (term < m_hard.term) {
    // A stale leader learns of the newer term from our answer; a stale
    // pre-candidate from our refusal. Anything else old is dropped.
    if (std::holds_alternative<AppendEntries>(message)) {
      send(from, AppendEntriesReply{m_hard.term, false, 0, 0, 0});
    } else if (const auto* install = std::get_if<InstallSnapshot>(&message)) {
      send(from, InstallSnapshotReply{m_hard.term, install->last_index, 0, false});
    } else if (vote != nullptr) {
      send(from, RequestVoteReply{m_hard.term, false, vote->pre_vote});
    }
    return;
  }
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, RequestVote>) on_request_vote(from, m);
        if constexpr (std::is_same_v<T, RequestVoteReply>) on_vote_reply(from, m);
        if constexpr (std::is_same_v<T, AppendEntries>) on_append(from, m);
        if constexpr (std::is_same_v<T, AppendEntriesReply>) on_append_reply(from, m);
        if constexpr (std::is_same_v<T, InstallSnapshot>) on_install_snapshot(from, m);
        if constexpr (std::is_same_v<T, InstallSnapshotReply>) on_install_snapshot_reply(from, m);
        if constexpr (std::is_same_v<T, TimeoutNow>) {
          // Only from our leader, in its term, and only a voter campaigns.
          if (m_role == Role::follower && m_leader == from && is_voter(m_self)) campaign(false, true);
        }
      },
      message);
}

void Raft::on_request_vote(const NodeId& from, const RequestVote& m) {
  bool grant = false;
  if (m.pre_vote) {
    // Would we vote for it in the term it names? Only if no leader is
    // heard from and its log is up to date.
    const bool leader_silent = !m_leader || m_election_elapsed >= m_config.election_ticks;
    grant = m.term > m_hard.term && leader_silent && log_up_to_date(m.last_log_index, m.last_log_term);
  } else {
    grant = m.term == m_hard.term && (!m_hard.voted_for || *m_hard.voted_for == from) &&
            log_up_to_date(m.last_log_index, m.last_log_term);
    if (grant) {
      m_hard.voted_for = from;
      m_election_elapsed = 0;
    }
  }
  send(from, RequestVoteReply{grant && m.pre_vote ? m.term : m_hard.term, grant, m.pre_vote});
}

void Raft::on_vote_reply(const NodeId& from, const RequestVoteReply& m) {
  if (!is_voter(from) || !m.granted) return;
  if (m_role == Role::pre_candidate && m.pre_vote) {
    m_votes.insert(from);
    if (m_votes.size() >= quorum()) campaign(false);
  } else if (m_role == Role::candidate && !m.pre_vote && m.term == m_hard.term) {
    m_votes.insert(from);
    if (m_votes.size() >= quorum()) become_leader();
  }
}

void Raft::on_append(const NodeId& from, const AppendEntries& m) {
  if (m_role != Role::follower) become_follower(m_hard.term, from);
  m_leader = from;
  m_election_elapsed = 0;
  // The entries must continue the leader's log where prev_log_index says,
  // in order and no newer than its term; anything else is not from a
  // correct leader and is dropped.
  Term previous_term = m.prev_log_term;
  for (std::size_t k = 0; k < m.entries.size(); ++k) {
    const Entry& e = m.entries[k];
    if (e.index != m.prev_log_index + 1 + k || e.term < previous_term || e.term > m.term) return;
    previous_term = e.term;
  }
  if (m.prev_log_index < m_commit) {
    // Already committed here; tell the leader how far we are.
    send(from, AppendEntriesReply{m_hard.term, true, m_commit, 0, 0});
    return;
  }
  if (m.prev_log_index > last_index() || term_at(m.prev_log_index) != m.prev_log_term) {
    AppendEntriesReply reply{m_hard.term, false, 0, last_index() + 1, 0};
    if (m.prev_log_index <= last_index()) {
      // Skip back over the whole conflicting term at once (§5.3).
      reply.conflict_term = term_at(m.prev_log_index);
      Index first = m.prev_log_index;
      while (first > m_commit + 1 && term_at(first - 1) == reply.conflict_term) --first;
      reply.conflict_index = first;
    }
    send(from, reply);
    return;
  }
  bool voters_may_change = false;
  for (const auto& e : m.entries) {
    if (e.index <= last_index()) {
      if (term_at(e.index) == e.term) continue;
      if (e.index <= m_commit) return;  // never rewrite a committed entry
      voters_may_change = voters_may_change || m_config_index >= e.index;
      m_log.resize(e.index - m_snapshot.index - 1);
      m_truncated_from = std::min(m_truncated_from.value_or(e.index), e.index);
      m_unpersisted_from = std::min(m_unpersisted_from, e.index);
    }
    m_log.push_back(e);
  }
  voters_may_change = voters_may_change || std::any_of(m.entries.begin(), m.entries.end(),
                                                       [](const Entry& e) { return e.kind == Entry::Kind::config; });
  if (voters_may_change) refresh_voters();
  const Index match = m.prev_log_index + m.entries.size();
  m_commit = std::max(m_commit, std::min(m.leader_commit, match));
  m_hard.commit = m_commit;
  send(from, AppendEntriesReply{m_hard.term, true, match, 0, 0});
}

void Raft::on_install_snapshot(const NodeId& from, const InstallSnapshot& m) {
  if (m_role != Role::follower) become_follower(m_hard.term, from);
  m_leader = from;
  m_election_elapsed = 0;
  InstallSnapshotReply reply{m_hard.term, m.last_index, 0, false};
  if (m.last_index <= m_commit) {
    // We hold all of that already.
    reply.received = m.total_bytes;
    reply.done = true;
    send(from, reply);
    return;
  }
  if (m.total_bytes > m_config.max_snapshot_bytes || m.last_term > m.term || m.voters.empty()) return;
  if (m.offset == 0) {
    m_receiving = Snapshot{m.last_index, m.last_term, sorted_unique(m.voters), {}};
    m_receiving.data.reserve(static_cast<std::size_t>(m.total_bytes));
  }
  const bool continues = m_receiving.index == m.last_index && m_receiving.term == m.last_term &&
                         m.offset == m_receiving.data.size() && m.offset + m.data.size() <= m.total_bytes;
  if (!continues) {
    // Out of order or another snapshot: say what we hold; the leader goes on from there.
    reply.received = m_receiving.index == m.last_index && m_receiving.term == m.last_term ? m_receiving.data.size() : 0;
    send(from, reply);
    return;
  }
  m_receiving.data += m.data;
  reply.received = m_receiving.data.size();
  if (m_receiving.data.size() < m.total_bytes) {
    send(from, reply);
    return;
  }
  // Complete (§5.1): entries after it that agree with it are kept; a log
  // that disagrees, or ends before it, is replaced whole.
  Snapshot snapshot = std::exchange(m_receiving, Snapshot{});
  if (snapshot.index <= last_index() && term_at(snapshot.index) == snapshot.term) {
    m_log.erase(m_log.begin(), m_log.begin() + static_cast<std::ptrdiff_t>(snapshot.index - m_snapshot.index));
  } else {
    m_log.clear();
    m_truncated_from = std::min(m_truncated_from.value_or(snapshot.index + 1), snapshot.index + 1);
  }
  m_unpersisted_from = std::max(m_unpersisted_from, snapshot.index + 1);
  m_snapshot = std::move(snapshot);
  m_snapshot_for_ready = m_snapshot;
  m_restore_snapshot = true;
  m_commit = std::max(m_commit, m_snapshot.index);
  m_hard.commit = m_commit;
  m_applied = m_snapshot.index;
  refresh_voters();
  reply.done = true;
  send(from, reply);
}

Raft::Progress* Raft::answered_by(const NodeId& from) {
  if (m_role != Role::leader) return nullptr;
  auto it = m_progress.find(from);
  if (it == m_progress.end()) return nullptr;
  Progress& p = it->second;
  p.recent_active = true;
  p.silent_ticks = 0;
  p.answered = true;
  return &p;
}

bool Raft::raise_match(Progress& p, Index match) {
  if (match <= p.match) return true;
  p.match = match;
  advance_commit();
  return m_role == Role::leader;  // false: it committed our own removal, and `p` is gone
}

void Raft::on_install_snapshot_reply(const NodeId& from, const InstallSnapshotReply& m) {
  Progress* progress = answered_by(from);
  if (progress == nullptr) return;
  Progress& p = *progress;
  if (m.done) {
    // It holds everything up to that snapshot (one of ours, so not past our log).
    if (m.last_index <= last_index() && !raise_match(p, m.last_index)) return;
    p.next = std::max(p.next, p.match + 1);
    p.snapshot_offset = 0;
    if (p.next <= last_index()) send_append(from);
    notify_commit();
    return;
  }
  if (m.last_index != m_snapshot.index || p.next > m_snapshot.index) return;  // about an older snapshot
  p.snapshot_offset = m.received;
  send_snapshot_chunk(from, p);
}

void Raft::on_append_reply(const NodeId& from, const AppendEntriesReply& m) {
  Progress* progress = answered_by(from);
  if (progress == nullptr) return;
  Progress& p = *progress;
  if (m.success) {
    if (m.match_index > last_index()) return;  // claims entries we never sent
    if (!raise_match(p, m.match_index)) return;
    p.next = std::max(p.next, p.match + 1);
    if (m_transferee == from && p.match == last_index()) {
      send(from, TimeoutNow{m_hard.term});
    } else if (p.next <= last_index()) {
      send_append(from);
    }
    notify_commit();
    return;
  }
  Index next = m.conflict_index;
  if (m.conflict_term != 0) {
    // Our last entry of the follower's conflicting term, if we have that term.
    for (Index i = last_index(); i > 0; --i) {
      if (term_at(i) == m.conflict_term) {
        next = i + 1;
        break;
      }
      if (term_at(i) < m.conflict_term) break;
    }
  }
  next = std::clamp(next, p.match + 1, last_index() + 1);
  if (next >= p.next && p.next > p.match + 1) next = p.next - 1;                     // always make progress backwards
  if (next <= m_snapshot.index && p.next > m_snapshot.index) p.snapshot_offset = 0;  // a fresh transfer
  p.next = next;
  send_append(from);
}

Ready Raft::take_ready() {
  Ready ready;
  if (m_hard != m_persisted_hard) {
    ready.hard_state = m_hard;
    m_persisted_hard = m_hard;
  }
  ready.snapshot = std::exchange(m_snapshot_for_ready, std::nullopt);
  ready.restore_snapshot = std::exchange(m_restore_snapshot, false);
  ready.truncate_from = std::exchange(m_truncated_from, std::nullopt);
  for (Index i = std::max(m_unpersisted_from, m_snapshot.index + 1); i <= last_index(); ++i) {
    ready.append.push_back(entry(i));
  }
  m_unpersisted_from = last_index() + 1;
  ready.messages = std::exchange(m_outbox, {});
  for (Index i = std::max(m_applied, m_snapshot.index) + 1; i <= m_commit; ++i) ready.committed.push_back(entry(i));
  m_applied = m_commit;
  return ready;
}

}  // namespace p2pd::raft
