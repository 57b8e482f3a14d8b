#include "daemon/nat/reachability.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace p2pd::nat {

std::string_view to_string(Reachability reachability) {
  switch (reachability) {
    case Reachability::unknown: return "unknown";
    case Reachability::public_: return "public";
    case Reachability::private_: return "private";
  }
  return "unknown";
}

std::vector<ReachabilityProbe::Request> ReachabilityProbe::tick(std::uint64_t now, const std::vector<HostPort>& helpers,
                                                                std::uint16_t port) {
  if (port != m_port && m_port != 0) {
    // A new port is a new question: the old verdict and the round in
    // flight (answers about the old port) no longer count.
    m_state = Reachability::unknown;
    m_detail.clear();
    m_waiting.clear();
    m_next_round_tick = now;
  }
  m_port = port;
  if (!m_waiting.empty() || now < m_next_round_tick || helpers.empty() || port == 0) return {};
  // Different hosts first: two daemons on one machine are one opinion.
  // The starting point rotates, so a helper that cannot dial anyone does
  // not decide every round.
  std::vector<HostPort> chosen;
  const std::size_t start = static_cast<std::size_t>(m_rounds % helpers.size());
  for (int pass = 0; pass < 2 && chosen.size() < kHelpersPerRound; ++pass) {
    for (std::size_t k = 0; k < helpers.size() && chosen.size() < kHelpersPerRound; ++k) {
      const HostPort& helper = helpers[(start + k) % helpers.size()];
      if (std::find(chosen.begin(), chosen.end(), helper) != chosen.end()) continue;
      const bool host_taken =
          std::any_of(chosen.begin(), chosen.end(), [&](const HostPort& c) { return c.host == helper.host; });
      if (pass == 0 && host_taken) continue;
      chosen.push_back(helper);
    }
  }
  ++m_rounds;
  m_waiting = chosen;
  m_reached = m_refused = 0;
  m_round_detail.clear();
  std::vector<Request> out;
  for (const auto& helper : chosen) out.push_back(Request{helper, port});
  return out;
}

void ReachabilityProbe::on_answer(const HostPort& helper, bool reached, std::string detail, std::uint64_t now) {
  auto it = std::find(m_waiting.begin(), m_waiting.end(), helper);
  if (it == m_waiting.end()) return;
  m_waiting.erase(it);
  if (reached) {
    if (m_reached++ == 0) m_round_detail = fmt::format("dialled back by {}", helper.to_string());
  } else {
    ++m_refused;
    if (m_reached == 0) m_round_detail = fmt::format("{} could not dial back: {}", helper.to_string(), detail);
  }
  if (m_waiting.empty()) finish_round(now);
}

void ReachabilityProbe::on_no_answer(const HostPort& helper, std::uint64_t now) {
  auto it = std::find(m_waiting.begin(), m_waiting.end(), helper);
  if (it == m_waiting.end()) return;
  m_waiting.erase(it);
  if (m_waiting.empty()) finish_round(now);
}

void ReachabilityProbe::recheck_soon() {
  m_next_round_tick = 0;
}

void ReachabilityProbe::finish_round(std::uint64_t now) {
  // One peer that reached us is proof; peers that tried and failed, with
  // none succeeding, say we are behind something that drops calls.
  if (m_reached > 0 || m_refused > 0) {
    m_state = m_reached > 0 ? Reachability::public_ : Reachability::private_;
    m_detail = m_round_detail;
    m_checked_tick = now;
    m_next_round_tick = now + kRecheckTicks;
  } else {
    m_next_round_tick = now + kRetryTicks;
  }
}

}  // namespace p2pd::nat
