#include "daemon/nat/punch_planner.hpp"

#include <algorithm>

namespace p2pd::nat {

std::string_view to_string(PunchPlanner::State state) {
  switch (state) {
    case PunchPlanner::State::waiting: return "waiting";
    case PunchPlanner::State::punching: return "punching";
    case PunchPlanner::State::punched: return "punched";
    case PunchPlanner::State::failed: return "failed";
  }
  return "waiting";
}

std::vector<PunchPlanner::Start> PunchPlanner::tick(std::uint64_t now, const std::vector<std::string>& relayed) {
  std::erase_if(m_peers, [&](const auto& entry) {
    return entry.second.state != State::punching &&
           std::find(relayed.begin(), relayed.end(), entry.first) == relayed.end();
  });
  for (const auto& addr : relayed) {
    if (!m_peers.contains(addr)) m_peers.emplace(addr, Peer{State::waiting, 0, 0, now, {}, 0, 0});
  }
  std::vector<Start> out;
  for (auto& [addr, peer] : m_peers) {
    if (peer.state == State::punched && now - peer.punched_tick >= kStableTicks) peer.losses = 0;
    if (m_in_flight >= kMaxConcurrent) break;
    if ((peer.state != State::waiting && peer.state != State::failed) || now < peer.next_tick) continue;
    if (peer.state == State::failed) peer.attempt = 0;  // a new round
    peer.state = State::punching;
    ++peer.attempt;
    ++m_in_flight;
    ++m_attempts;
    out.push_back(Start{addr, peer.attempt});
  }
  return out;
}

void PunchPlanner::end_attempt(Peer& peer) {
  if (peer.state == State::punching && m_in_flight > 0) --m_in_flight;
}

bool PunchPlanner::on_result(const std::string& addr, bool punched, std::string detail, std::uint64_t now) {
  auto it = m_peers.find(addr);
  if (it == m_peers.end() || it->second.state != State::punching) return true;
  Peer& peer = it->second;
  end_attempt(peer);
  if (punched) {
    ++m_successes;
    // Keeps the attempts it took (for p2pctl punch) and the losses so far.
    peer = Peer{State::punched, peer.attempt, 0, now, {}, peer.losses, now};
    return true;
  }
  peer.last_error = std::move(detail);
  if (peer.attempt < kAttemptsPerRound) {
    peer.state = State::waiting;
    peer.next_tick = now + kRetryTicks;
    return false;
  }
  // The round failed: most likely a NAT that maps each connection anew
  // (symmetric), which no timing fixes. Back off, doubling.
  peer.state = State::failed;
  const std::uint32_t shift = std::min<std::uint32_t>(peer.failed_rounds, 10);
  ++peer.failed_rounds;
  peer.next_tick = now + std::min(kMaxBackoffTicks, kFirstBackoffTicks << shift);
  return true;
}

void PunchPlanner::on_lost(const std::string& addr, std::uint64_t now) {
  auto it = m_peers.find(addr);
  if (it == m_peers.end() || it->second.state != State::punched) return;
  // A path that punches but keeps breaking (a middlebox, a peer that
  // closes it) is punched again less and less often.
  const std::uint32_t losses = it->second.losses;
  const std::uint64_t wait = std::min(kMaxBackoffTicks, kAfterLossTicks << std::min<std::uint32_t>(losses, 10));
  it->second = Peer{State::waiting, 0, 0, now + wait, "the direct connection broke", losses + 1, 0};
}

void PunchPlanner::request(const std::string& addr, std::uint64_t now) {
  auto [it, inserted] = m_peers.try_emplace(addr, Peer{State::waiting, 0, 0, now, {}, 0, 0});
  if (inserted || it->second.state == State::punching) return;
  const std::uint32_t failed_rounds = it->second.failed_rounds;
  it->second = Peer{State::waiting, 0, failed_rounds, now, {}, it->second.losses, 0};
}

}  // namespace p2pd::nat
