#pragma once
// A STUN Binding client (RFC 8489 §6.2.1, §7.2.1) for the --stun servers,
// sans-IO: ticks and datagrams in, datagrams and answers out. The driver
// owns the UDP socket and resolves the servers' names.
//
// Each server is asked over the same socket, so two answers tell how the
// NAT maps it (RFC 4787 §4.1): the same public address and port towards
// both servers is an endpoint-independent mapping (what hole punching
// needs), different ones an endpoint-dependent ("symmetric") one.

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/host_port.hpp"
#include "daemon/nat/stun_codec.hpp"

namespace p2pd::nat {

struct StunServerState {
  HostPort server;
  std::optional<HostPort> mapped;  // the last answer's reflexive address
  std::uint64_t rtt_ticks = 0;     // from the first request to the answer
  std::string error;               // the last failure, empty after an answer
  std::uint64_t answered_tick = 0;
  std::uint32_t failures = 0;  // in a row
  // The transaction in flight, if any.
  std::optional<TransactionId> transaction;
  std::uint64_t first_sent_tick = 0;
  std::uint64_t next_send_tick = 0;  // a retransmission, or the next probe
  std::uint32_t requests_sent = 0;
};

class StunClient {
 public:
  // §6.2.1 at 20 ticks a second: RTO 500 ms, doubled after each of Rc = 7
  // requests, and Rm = 16 RTOs after the last before giving up (39.5 s).
  static constexpr std::uint64_t kInitialRtoTicks = 10;
  static constexpr std::uint32_t kMaxRequests = 7;
  static constexpr std::uint64_t kLastWaitRtos = 16;
  // A mapping is re-checked every 5 minutes, a server that failed after a
  // minute (then backing off to 16 minutes).
  static constexpr std::uint64_t kRefreshTicks = 5 * 60 * 20;
  static constexpr std::uint64_t kRetryTicks = 60 * 20;

  // `new_transaction` draws each transaction id: 96 bits an off-path
  // attacker (or another server) cannot guess (§6), so the driver passes
  // the OS's randomness and tests a seeded generator.
  using TransactionSource = std::function<TransactionId()>;
  StunClient(std::vector<HostPort> servers, TransactionSource new_transaction);

  struct Datagram {
    std::size_t server;  // index into servers()
    std::string bytes;
  };
  // Requests due at `now`: first transmissions and retransmissions. A
  // transaction that ran out of time fails here.
  std::vector<Datagram> tick(std::uint64_t now);

  // A datagram from the address of the servers `from` (indices; several
  // names may resolve to one address): true when it answered one of their
  // transactions in flight. Malformed ones, strays, duplicates and answers
  // from the wrong address are ignored (§6.3).
  bool on_datagram(std::span<const std::uint8_t> bytes, std::span<const std::size_t> from, std::uint64_t now);

  // The driver could not send to or resolve a server.
  void on_unreachable(std::size_t server, const std::string& why, std::uint64_t now);

  [[nodiscard]] const std::vector<StunServerState>& servers() const { return m_servers; }

 private:
  void fail(StunServerState& server, std::string why, std::uint64_t now);
  std::vector<StunServerState> m_servers;
  TransactionSource m_new_transaction;
};

enum class NatMapping { unknown, none, endpoint_independent, endpoint_dependent };
std::string_view to_string(NatMapping mapping);

// How the NAT maps this node's socket, from reflexive addresses the same
// local socket got from different servers (RFC 4787 §4.1). `local_ips`:
// this machine's own addresses (a reflexive address among them: no NAT).
NatMapping classify_mapping(const std::vector<HostPort>& reflexive, const std::vector<std::string>& local_ips);

}  // namespace p2pd::nat
