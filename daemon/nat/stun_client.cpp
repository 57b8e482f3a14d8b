#include "daemon/nat/stun_client.hpp"

#include <algorithm>

#include "common/version.hpp"

namespace p2pd::nat {

StunClient::StunClient(std::vector<HostPort> servers, TransactionSource new_transaction)
    : m_new_transaction(std::move(new_transaction)) {
  for (auto& server : servers) {
    StunServerState state;
    state.server = std::move(server);
    m_servers.push_back(std::move(state));
  }
}

std::vector<StunClient::Datagram> StunClient::tick(std::uint64_t now) {
  std::vector<Datagram> out;
  for (std::size_t i = 0; i < m_servers.size(); ++i) {
    auto& server = m_servers[i];
    if (now < server.next_send_tick) continue;
    if (server.transaction && server.requests_sent >= kMaxRequests) {
      fail(server, "no answer to 7 requests in 39.5 s", now);
      continue;
    }
    if (!server.transaction) {
      const TransactionId id = m_new_transaction();
      server.transaction = id;
      server.first_sent_tick = now;
      server.requests_sent = 0;
    }
    out.push_back(Datagram{i, encode_binding_request(*server.transaction, fmt::format("p2pd {}", kVersion))});
    ++server.requests_sent;
    // Sent at 0, RTO, 3 RTO, 7 RTO, ... and after the last, Rm RTOs more.
    const std::uint64_t rto = kInitialRtoTicks << (server.requests_sent - 1);
    server.next_send_tick = now + (server.requests_sent >= kMaxRequests ? kLastWaitRtos * kInitialRtoTicks : rto);
  }
  return out;
}

bool StunClient::on_datagram(std::span<const std::uint8_t> bytes, std::span<const std::size_t> from,
                             std::uint64_t now) {
  auto message = decode_stun(bytes);
  if (!message || message->method != kStunMethodBinding) return false;
  if (message->klass != StunClass::success && message->klass != StunClass::error) return false;
  auto it = std::find_if(from.begin(), from.end(), [&](std::size_t i) {
    return i < m_servers.size() && m_servers[i].transaction == message->transaction;
  });
  if (it == from.end()) return false;  // a stray, a late duplicate, or not from that server
  auto& server = m_servers[*it];
  if (message->klass == StunClass::error) {
    fail(server, fmt::format("error response {} {}", message->error_code.value_or(0), message->error_reason), now);
    return true;
  }
  // §6.3.3: a success response with an unknown comprehension-required
  // attribute, or without the address asked for, is no answer.
  const auto reflexive = message->reflexive_address();
  if (message->unknown_required_attribute != 0 || !reflexive) return false;
  server.mapped = reflexive;
  server.rtt_ticks = now - server.first_sent_tick;
  server.answered_tick = now;
  server.error.clear();
  server.failures = 0;
  server.transaction.reset();
  server.next_send_tick = now + kRefreshTicks;
  return true;
}

void StunClient::on_unreachable(std::size_t server, const std::string& why, std::uint64_t now) {
  if (server < m_servers.size()) fail(m_servers[server], why, now);
}

void StunClient::fail(StunServerState& server, std::string why, std::uint64_t now) {
  server.error = std::move(why);
  server.transaction.reset();
  ++server.failures;
  const std::uint32_t doublings = std::min<std::uint32_t>(server.failures - 1, 4);
  server.next_send_tick = now + (kRetryTicks << doublings);
}

std::string_view to_string(NatMapping mapping) {
  switch (mapping) {
    case NatMapping::unknown: return "unknown";
    case NatMapping::none: return "none";
    case NatMapping::endpoint_independent: return "endpoint-independent";
    case NatMapping::endpoint_dependent: return "endpoint-dependent";
  }
  return "unknown";
}

NatMapping classify_mapping(const std::vector<HostPort>& reflexive, const std::vector<std::string>& local_ips) {
  if (reflexive.empty()) return NatMapping::unknown;
  if (std::find(local_ips.begin(), local_ips.end(), reflexive.front().host) != local_ips.end()) return NatMapping::none;
  if (reflexive.size() < 2) return NatMapping::unknown;
  const bool same =
      std::all_of(reflexive.begin(), reflexive.end(), [&](const HostPort& r) { return r == reflexive.front(); });
  return same ? NatMapping::endpoint_independent : NatMapping::endpoint_dependent;
}

}  // namespace p2pd::nat
