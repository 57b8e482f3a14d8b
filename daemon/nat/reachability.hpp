#pragma once
// Is this node reachable from the pool? Observed addresses say where peers
// see us from, not whether they can call us: a home router forwards the
// answers to our own calls and drops calls that start outside. So the node
// asks peers to dial its address back (libp2p's AutoNAT): a peer dials the
// IP it sees the request come from, at the port we name, from a port of its
// own (not its listen port, so the dial punches nothing by accident), and
// says whether the node that answered there was us. Sans-IO: ticks and
// answers in, dial-back requests out.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/host_port.hpp"

namespace p2pd::nat {

enum class Reachability { unknown, public_, private_ };
std::string_view to_string(Reachability reachability);

class ReachabilityProbe {
 public:
  // Peers asked in one round (on different hosts where possible); a round
  // is repeated every 10 minutes, or 30 s after a round that got no answer.
  static constexpr std::size_t kHelpersPerRound = 2;
  static constexpr std::uint64_t kRecheckTicks = 10 * 60 * 20;
  static constexpr std::uint64_t kRetryTicks = 30 * 20;

  struct Request {
    HostPort helper;     // the peer asked to dial back
    std::uint16_t port;  // the port it should dial at our address
  };
  // `helpers`: peers that answer us, best first; `port`: where we listen as
  // seen from outside (the listen port, or a mapped port). A new round
  // starts when one is due and no request is in flight.
  std::vector<Request> tick(std::uint64_t now, const std::vector<HostPort>& helpers, std::uint16_t port);

  // The helper answered: it reached us (`reached`) or it tried and could not.
  void on_answer(const HostPort& helper, bool reached, std::string detail, std::uint64_t now);
  // The helper itself could not be asked: no evidence either way.
  void on_no_answer(const HostPort& helper, std::uint64_t now);
  // Something changed (our address or port): check again at the next tick.
  void recheck_soon();

  [[nodiscard]] Reachability state() const { return m_state; }
  // What the last verdict rests on, for netcheck ("reached by 10.0.0.1:7420").
  [[nodiscard]] const std::string& detail() const { return m_detail; }
  [[nodiscard]] std::uint64_t checked_tick() const { return m_checked_tick; }

 private:
  void finish_round(std::uint64_t now);

  Reachability m_state = Reachability::unknown;
  std::string m_detail;
  std::uint64_t m_checked_tick = 0;
  std::uint64_t m_next_round_tick = 0;
  std::uint64_t m_rounds = 0;
  std::uint16_t m_port = 0;
  // The round in flight.
  std::vector<HostPort> m_waiting;
  std::size_t m_reached = 0;
  std::size_t m_refused = 0;
  std::string m_round_detail;
};

}  // namespace p2pd::nat
