// The Raft core bound to the daemon: its storage in state_dir/raft, its
// messages over gRPC (service Raft), its committed entries applied to the
// job table, and the leader's voter policy. Everything here runs on the io
// thread. Order per Ready (thesis §3.8, etcd's raft.Ready contract): persist
// and fsync, then send, then apply.
#include <boost/asio/post.hpp>

#include <algorithm>
#include <random>

#include "common/log.hpp"
#include "daemon/node/node.hpp"

namespace p2pd::node {
namespace {

std::uint32_t to_ticks(std::uint32_t ms) {
  const auto tick = static_cast<std::uint32_t>(kTickInterval.count());
  return std::max<std::uint32_t>(1, (ms + tick / 2) / tick);
}

}  // namespace

Result<void> Node::start_raft() {
  auto storage = raft::RaftStorage::open(m_config.state_dir / "raft");
  if (!storage) return make_error(storage.error().code, "Raft state: {}", storage.error().message);
  m_raft_storage = std::move(*storage);
  auto loaded = m_raft_storage->loaded();
  if (loaded.warning) log::warn(log::Category::raft, "{}", *loaded.warning);

  // A node that starts a new pool (no --bootstrap, nothing on disk) is its
  // only voter; its first term's entry writes that into the log. Any other
  // node takes its voters from its log or snapshot, or, new to a pool,
  // waits as a learner until the leader makes it a voter.
  const bool fresh = loaded.log.empty() && loaded.snapshot.index == 0 && loaded.hard_state.term == 0;
  std::vector<NodeId> initial_voters;
  if (fresh && m_config.bootstrap.empty()) initial_voters.push_back(m_identity.id);

  raft::RaftConfig config;
  config.heartbeat_ticks = to_ticks(m_config.raft_heartbeat_ms);
  config.election_ticks = to_ticks(m_config.raft_election_timeout_ms);
  config.election_jitter_ticks = config.election_ticks - 1;  // randomized in [T, 2T)
  m_voter_policy.target_voters = m_config.raft_voters;
  m_voter_policy.replace_after_ticks = to_ticks(m_config.raft_voter_timeout_s * 1000);
  m_voter_policy.live_within_ticks = 2 * config.election_ticks;

  if (loaded.snapshot.index > 0) {
    auto table = sched::JobTable::restore(loaded.snapshot.data);
    if (!table) {
      return make_error(ErrorCode::corrupt, "the Raft snapshot's job table is damaged: {}", table.error().message);
    }
    m_jobs = std::move(*table);
  }
  std::random_device entropy;
  const std::uint64_t seed = (static_cast<std::uint64_t>(entropy()) << 32) ^ entropy();
  m_raft = std::make_unique<raft::Raft>(m_identity.id, std::move(initial_voters), config, seed, loaded.hard_state,
                                        std::move(loaded.log), std::move(loaded.snapshot));
  log::info(log::Category::raft, "term {}, {} entries (snapshot at {}, committed {}), {} voters{}", m_raft->term(),
            m_raft->last_index(), m_raft->snapshot_index(), m_raft->commit_index(), m_raft->voters().size(),
            fresh && m_config.bootstrap.empty() ? " (a new pool: this node alone)" : "");
  // Entries up to here were applied, and traced, before this start: applied
  // again now, they are not received again.
  m_traced_apply_from = m_raft->commit_index() + 1;
  return {};
}

void Node::tick_raft() {
  if (!m_raft || m_raft_failed) return;
  introduce_to_voters();
  m_raft->tick();
  if (m_raft->role() == raft::Role::leader) manage_voters();
  pump_raft();
}

void Node::on_raft_message(net::RaftInbound inbound) {
  boost::asio::post(m_io, [this, inbound = std::move(inbound)]() mutable {
    if (!m_raft || m_raft_failed) return;
    // Leaving: once no longer the leader, stay silent, so that no leader
    // counts this node as live and makes it a voter again.
    if (m_leaving && m_raft->role() != raft::Role::leader) return;
    note_peer(inbound.from, inbound.from_addr.to_string(), {});
    if (!inbound.message) {
      // A hello: the address was all, unless a voter says it is leaving:
      // the leader removes it at once rather than after its silence.
      if (inbound.leaving && m_raft->role() == raft::Role::leader && m_raft->is_voter(inbound.from)) {
        if (auto removed = m_raft->remove_voter(inbound.from)) {
          log::info(log::Category::raft, "removing voter {}: it is leaving the pool (index {})", inbound.from.hex(),
                    *removed);
          pump_raft();
        } else {
          m_departing.insert(inbound.from);  // after the change in flight (manage_voters)
        }
      }
      return;
    }
    m_raft->step(inbound.from, *inbound.message);
    pump_raft();
  });
}

void Node::pump_raft() {
  for (int round = 0; round < 4 && m_raft && !m_raft_failed; ++round) {
    auto ready = m_raft->take_ready();
    if (ready.empty()) break;
    // Durable before anything depends on it: a vote or an entry that is
    // acknowledged must survive a crash.
    if (auto saved = m_raft_storage->save(ready); !saved) {
      log::error(log::Category::raft,
                 "cannot persist Raft state ({}); stopping, since acting on state that is not durable could elect two "
                 "leaders",
                 saved.error().message);
      m_raft_failed = true;
      m_service.stopping("stopping: Raft state cannot be persisted");
      request_stop();
      return;
    }
    if (ready.snapshot && ready.restore_snapshot) {
      auto table = sched::JobTable::restore(ready.snapshot->data);
      if (table) {
        m_jobs = std::move(*table);
        m_jobs_changed = true;
        log::info(log::Category::raft, "installed the leader's snapshot at index {} ({} jobs)", ready.snapshot->index,
                  m_jobs.size());
      } else {
        // Going on would apply later entries to a table that is not the
        // pool's: stop instead (fail-stop, as etcd does on a bad snapshot).
        log::error(log::Category::raft, "the leader's snapshot at index {} is unreadable ({}); stopping",
                   ready.snapshot->index, table.error().message);
        m_raft_failed = true;
        m_service.stopping("stopping: the leader's snapshot is unreadable");
        request_stop();
        return;
      }
    }
    for (auto& envelope : ready.messages) send_raft(std::move(envelope));
    for (const auto& entry : ready.committed) apply_committed(entry);
    const raft::Index applied = m_raft->applied_index();
    if (applied >= m_raft->snapshot_index() + m_config.raft_snapshot_entries) {
      if (auto compacted = m_raft->compact(applied, m_jobs.snapshot()); !compacted) {
        log::warn(log::Category::raft, "compaction at {} failed: {}", applied, compacted.error().message);
      }
    }
  }
  log_raft_changes();
  if (m_jobs_changed && !m_jobs_pass_pending) {
    m_jobs_pass_pending = true;
    boost::asio::post(m_io, [this] {
      m_jobs_pass_pending = false;
      on_jobs_changed();
    });
  }
}

void Node::request_raft_pump() {
  if (m_raft_pump_pending) return;
  m_raft_pump_pending = true;
  boost::asio::post(m_io, [this] {
    m_raft_pump_pending = false;
    pump_raft();
  });
}

void Node::apply_committed(const raft::Entry& entry) {
  switch (entry.kind) {
    case raft::Entry::Kind::noop: break;
    case raft::Entry::Kind::config:
      if (auto voters = raft::decode_voters(entry.data)) {
        log::debug(log::Category::raft, "voters at index {} are {}", entry.index, voters->size());
      }
      break;
    case raft::Entry::Kind::command:
      // Every replica applies the same commands in the same order, and
      // rejects the same ones: the table stays identical everywhere.
      if (auto applied = m_jobs.apply(entry.data); !applied) {
        log::debug(log::Category::raft, "entry {} rejected by the job table: {}", entry.index, applied.error().message);
      } else {
        m_jobs_changed = true;
        // The proposer's stamp: this node learned of the command now.
        if (m_tracer && entry.index >= m_traced_apply_from) {
          if (auto summary = sched::summarize(entry.data); summary && !summary->trace.empty()) {
            m_tracer->on_receive(summary->trace, "applied " + summary->what);
          }
        }
      }
      break;
  }
}

void Node::send_raft(raft::Envelope envelope) {
  if (const auto* vote = std::get_if<raft::RequestVote>(&envelope.message)) {
    log::debug(log::Category::raft, "asking {} for a {}vote in term {}", envelope.to.hex(),
               vote->pre_vote ? "pre-" : "", vote->term);
  } else if (const auto* reply = std::get_if<raft::RequestVoteReply>(&envelope.message)) {
    log::debug(log::Category::raft, "{} {} a {}vote (term {})", reply->granted ? "granting" : "refusing",
               envelope.to.hex(), reply->pre_vote ? "pre-" : "", reply->term);
  }
  auto it = m_peers_seen.find(envelope.to);
  if (it == m_peers_seen.end()) {
    log::trace(log::Category::raft, "no address known for {}; message dropped", envelope.to.hex());
    resolve_raft_peer(envelope.to);
    return;
  }
  auto to = parse_host_port(it->second.addr, false);
  if (!to) return;
  if (m_raft_calls_in_flight >= kMaxRaftCallsInFlight) {
    log::debug(log::Category::raft, "{} messages in flight; dropping one to {}", m_raft_calls_in_flight,
               to->to_string());
    return;
  }
  ++m_raft_calls_in_flight;
  const auto message = net::encode_raft(m_identity.id, raft_self_addr(), envelope.to, envelope.message);
  std::string stamp;
  if (m_tracer) {
    if (std::string name = raft_send_name(envelope.message); !name.empty()) {
      if (m_last_traced_raft_send.size() >= kMaxPeersRemembered) m_last_traced_raft_send.clear();
      if (std::string& last = m_last_traced_raft_send[envelope.to]; last != name) {
        stamp = m_tracer->on_send(fmt::format("{} ({})", name, envelope.to.short_hex()));
        last = std::move(name);
      }
    }
  }
  m_peer_client->raft_step(
      *to, message, kRaftCallTimeout,
      [this, to = *to, id = envelope.to](Result<void> sent) {
        --m_raft_calls_in_flight;
        if (!sent) {
          log::trace(log::Category::raft, "message to {} not delivered: {}", to.to_string(), sent.error().message);
          resolve_raft_peer(id);  // it may have restarted elsewhere
        }
      },
      stamp);
}

std::string Node::raft_send_name(const raft::Message& message) {
  // An election's messages, a leadership hand-over and a snapshot are the
  // pool's history; appends and heartbeats (10 a second) are not recorded.
  if (const auto* vote = std::get_if<raft::RequestVote>(&message)) {
    return fmt::format("ask for a {}vote in term {}", vote->pre_vote ? "pre-" : "", vote->term);
  }
  if (const auto* reply = std::get_if<raft::RequestVoteReply>(&message)) {
    return fmt::format("{} a {}vote in term {}", reply->granted ? "grant" : "refuse", reply->pre_vote ? "pre-" : "",
                       reply->term);
  }
  if (const auto* timeout = std::get_if<raft::TimeoutNow>(&message)) {
    return fmt::format("hand leadership over in term {}", timeout->term);
  }
  if (const auto* snapshot = std::get_if<raft::InstallSnapshot>(&message);
      snapshot != nullptr && snapshot->offset == 0) {
    return fmt::format("send the snapshot at index {}", snapshot->last_index);
  }
  return {};
}

void Node::resolve_raft_peer(const NodeId& id) {
  // The ring is the pool's directory: a lookup of a node's own id ends at
  // that node when it is a member, with the address it serves on now.
  if (!m_overlay || !m_overlay->ring().is_member() || m_leaving) return;
  const auto now = std::chrono::steady_clock::now();
  if (m_raft_resolving.size() >= kMaxPeersRemembered) {
    std::erase_if(m_raft_resolving, [](const auto& r) { return !r.second.in_flight; });
  }
  std::size_t in_flight = 0;
  for (const auto& [_, r] : m_raft_resolving) in_flight += r.in_flight ? 1 : 0;
  auto& resolving = m_raft_resolving[id];
  if (resolving.in_flight || now < resolving.next_allowed || in_flight >= kMaxRaftResolvesInFlight) return;
  resolving.in_flight = true;
  resolving.next_allowed = now + kRaftResolveInterval;
  run_operation(m_overlay->lookup(id), [this, id](chord::OperationResult result) {
    m_raft_resolving[id].in_flight = false;
    if (!result.ok || result.holders.empty() || result.holders.front().id != id) return;
    const std::string& addr = result.holders.front().addr;
    auto it = m_peers_seen.find(id);
    if (it == m_peers_seen.end() || it->second.addr != addr) {
      log::info(log::Category::raft, "node {} is now at {} (found through the ring)", id.hex(), addr);
      note_peer(id, addr, {});
    }
    introduce_to_voters();
  });
}

HostPort Node::raft_self_addr() const {
  const auto self_addr = parse_host_port(m_chord_self.addr, false);
  return self_addr ? *self_addr : m_listen;
}

void Node::introduce_to_voters() {
  // Every voter learns where this node serves (after a restart on another
  // port, say), so whichever of them leads next reaches it at once instead
  // of discovering it through failed sends. Voters we have no address for
  // are found through the ring first.
  if (m_leaving || !m_raft) return;
  std::erase_if(m_introduced_to, [&](const auto& entry) { return !m_raft->is_voter(entry.first); });
  for (const auto& voter : m_raft->voters()) {
    if (voter == m_identity.id) continue;
    auto it = m_peers_seen.find(voter);
    if (it == m_peers_seen.end()) {
      resolve_raft_peer(voter);
      continue;
    }
    if (m_introduced_to[voter] == it->second.addr) continue;
    auto to = parse_host_port(it->second.addr, false);
    if (!to || m_raft_calls_in_flight >= kMaxRaftCallsInFlight) continue;
    m_introduced_to[voter] = it->second.addr;
    ++m_raft_calls_in_flight;
    m_peer_client->raft_step(*to, net::encode_raft_hello(m_identity.id, raft_self_addr(), voter), kRaftCallTimeout,
                             [this, voter](Result<void> sent) {
                               --m_raft_calls_in_flight;
                               if (!sent) m_introduced_to.erase(voter);  // try again next round
                             });
  }
}

void Node::manage_voters() {
  // Learners: the peers heard from lately that are not voters. They follow
  // the log, so every peer knows the leader and the job table.
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::pair<std::chrono::steady_clock::time_point, NodeId>> recent;
  for (const auto& [id, seen] : m_peers_seen) {
    if (now - seen.last_seen <= kLearnerFreshness && !m_raft->is_voter(id)) recent.emplace_back(seen.last_seen, id);
  }
  std::sort(recent.begin(), recent.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  if (recent.size() > kMaxLearners) recent.resize(kMaxLearners);
  std::vector<NodeId> learners;
  for (const auto& r : recent) learners.push_back(r.second);
  m_raft->set_learners(std::move(learners));

  if (m_leaving || m_raft->voter_change_pending()) return;
  std::erase_if(m_departing, [&](const NodeId& id) { return !m_raft->is_voter(id); });
  if (!m_departing.empty()) {
    const NodeId id = *m_departing.begin();
    if (auto removed = m_raft->remove_voter(id)) {
      log::info(log::Category::raft, "removing voter {}: it is leaving the pool (index {})", id.hex(), *removed);
      trace_local(fmt::format("remove voter {}: it leaves", id.short_hex()));
      m_departing.erase(id);
    }
    return;
  }
  std::set<NodeId> relayed;
  for (const auto& [id, seen] : m_peers_seen) {
    if (seen.relayed) relayed.insert(id);
  }
  auto change = raft::next_voter_change(m_identity.id, m_raft->voters(), m_raft->followers(), m_raft->last_index(),
                                        m_voter_policy, relayed);
  if (!change) return;
  const bool add = change->kind == raft::VoterChange::Kind::add;
  auto proposed = add ? m_raft->add_voter(change->node) : m_raft->remove_voter(change->node);
  if (proposed) {
    log::info(log::Category::raft, "{} voter {} ({}), at index {}", add ? "adding" : "removing", change->node.hex(),
              change->reason, *proposed);
    trace_local(fmt::format("{} voter {} ({})", add ? "add" : "remove", change->node.short_hex(), change->reason));
  }
}

void Node::hand_over_leadership() {
  if (!m_raft || m_raft_failed) return;
  if (m_raft->role() != raft::Role::leader) {
    // A voter tells the leader it is leaving, so it is replaced now, not
    // after --raft-voter-timeout of silence.
    const auto& leader = m_raft->leader();
    if (!leader || !m_raft->is_voter(m_identity.id)) return;
    auto it = m_peers_seen.find(*leader);
    auto to = it == m_peers_seen.end() ? std::nullopt : std::optional(parse_host_port(it->second.addr, false));
    if (!to || !*to) return;
    log::info(log::Category::raft, "leaving; asking leader {} to remove this node from the voters", leader->hex());
    ++m_raft_calls_in_flight;
    m_leave_notice_pending = true;
    m_peer_client->raft_step(**to, net::encode_raft_hello(m_identity.id, raft_self_addr(), *leader, true),
                             kRaftCallTimeout, [this](Result<void>) {
                               --m_raft_calls_in_flight;
                               m_leave_notice_pending = false;
                               check_leave_done();
                             });
    return;
  }
  if (m_raft->voters().size() == 1) return;  // alone: nobody to hand over to
  // Removing ourselves hands leadership to the most up-to-date voter as
  // soon as that commits (the core sends it TimeoutNow, §3.10).
  auto removed = m_raft->remove_voter(m_identity.id);
  if (removed) {
    log::info(log::Category::raft, "leaving; removing this node from the voters (index {})", *removed);
  } else {
    // A change is still in flight: hand over directly to the best follower.
    const auto followers = m_raft->followers();
    const auto best = std::max_element(followers.begin(), followers.end(), [](const auto& a, const auto& b) {
      return (a.second.voter ? a.second.match : 0) < (b.second.voter ? b.second.match : 0);
    });
    if (best != followers.end() && best->second.voter) {
      log::info(log::Category::raft, "leaving; handing leadership to {}", best->first.hex());
      (void)m_raft->transfer_leadership(best->first);
    }
  }
  pump_raft();
}

std::string Node::raft_role() const {
  if (!m_raft) return "learner";
  if (m_raft->role() == raft::Role::follower && !m_raft->is_voter(m_identity.id)) return "learner";
  return std::string(raft::to_string(m_raft->role()));
}

void Node::log_raft_changes() {
  if (!m_raft) return;
  const std::string role = raft_role();
  if (m_raft->term() == m_logged_term && m_raft->leader() == m_logged_leader && role == m_logged_role) return;
  const bool leader_changed = m_raft->leader() != m_logged_leader;
  m_logged_term = m_raft->term();
  m_logged_leader = m_raft->leader();
  m_logged_role = role;
  if (m_raft->leader()) {
    if (leader_changed || role == "leader") {
      log::info(log::Category::raft, "term {}: leader {}{} ({} voters, this node {})", m_raft->term(),
                m_raft->leader()->hex(), *m_raft->leader() == m_identity.id ? " (this node)" : "",
                m_raft->voters().size(), role);
      trace_local(
          fmt::format("term {}: leader {} (this node {})", m_raft->term(), m_raft->leader()->short_hex(), role));
    }
  } else {
    log::debug(log::Category::raft, "term {}: no leader known (this node {})", m_raft->term(), role);
  }
}

void Node::get_leader(std::function<void(control::LeaderView)> done) {
  boost::asio::post(m_io, [this, done = std::move(done)] {
    control::LeaderView view;
    view.role = raft_role();
    view.target_voters = m_config.raft_voters;
    if (m_raft) {
      view.term = m_raft->term();
      if (const auto& leader = m_raft->leader()) {
        view.leader_id = leader->hex();
        if (*leader == m_identity.id) {
          view.leader_addr = m_chord_self.addr;
        } else if (auto it = m_peers_seen.find(*leader); it != m_peers_seen.end()) {
          view.leader_addr = it->second.addr;
        }
      }
      for (const auto& v : m_raft->voters()) view.voters.push_back(v.hex());
      view.commit_index = m_raft->commit_index();
      view.last_index = m_raft->last_index();
      view.applied_index = m_raft->applied_index();
      view.snapshot_index = m_raft->snapshot_index();
      for (const auto& [id, progress] : m_raft->followers()) {
        view.followers.push_back(control::RaftFollowerView{
            id.hex(), progress.match, static_cast<std::uint64_t>(progress.silent_ticks) * kTickInterval.count(),
            progress.voter});
      }
    }
    if (m_scheduler) {
      for (const auto& w : m_scheduler->workers(m_jobs)) {
        view.workers.push_back(control::WorkerView{
            w.report.id.hex(), std::string(exec::to_string(w.report.executor)), w.report.gflops, w.report.memory_bytes,
            w.report.slots, w.running, static_cast<std::uint64_t>(w.silent_ticks) * kTickInterval.count(),
            static_cast<std::uint64_t>(w.banned_ticks_left) * kTickInterval.count()});
      }
    }
    done(std::move(view));
  });
}

}  // namespace p2pd::node

namespace p2pd::node {

bool Node::is_leader() const {
  return m_raft && !m_raft_failed && m_raft->role() == raft::Role::leader;
}

std::optional<HostPort> Node::leader_addr() const {
  if (!m_raft || !m_raft->leader() || *m_raft->leader() == m_identity.id) return std::nullopt;
  auto it = m_peers_seen.find(*m_raft->leader());
  if (it == m_peers_seen.end()) return std::nullopt;
  auto addr = parse_host_port(it->second.addr, false);
  if (!addr) return std::nullopt;
  return *addr;
}

}  // namespace p2pd::node
