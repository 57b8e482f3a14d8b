// NAT-PMP (RFC 6886) through libnatpmp: the default gateway is asked for its
// public address (§3.2) and for a TCP mapping (§3.3). The library keeps the
// RFC's retransmission schedule (250 ms, doubling); we stop it after
// kDeadline, as a gateway that does not answer in two seconds is not going
// to, and the whole round is retried later anyway.
#include <arpa/inet.h>
#include <natpmp.h>
#include <poll.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>

#include "daemon/nat/gateway.hpp"

namespace p2pd::nat {
namespace {

constexpr std::chrono::milliseconds kDeadline{2000};  // 250 + 500 + 1000 ms of retransmissions

std::string describe(int code) {
  switch (code) {
    case NATPMP_ERR_CANNOTGETGATEWAY: return "no default gateway";
    case NATPMP_ERR_NOGATEWAYSUPPORT: return "the gateway does not speak NAT-PMP (port 5351 refused)";
    case NATPMP_ERR_WRONGPACKETSOURCE: return "an answer came from another host than the gateway";
    case NATPMP_ERR_UNSUPPORTEDVERSION: return "the gateway does not support NAT-PMP version 0";
    case NATPMP_ERR_UNSUPPORTEDOPCODE: return "the gateway does not support this request";
    case NATPMP_ERR_NOTAUTHORIZED: return "the gateway refused: not authorized (mapping disabled on the router)";
    case NATPMP_ERR_NETWORKFAILURE: return "the gateway has no public address yet (network failure)";
    case NATPMP_ERR_OUTOFRESOURCES: return "the gateway is out of mappings";
    case NATPMP_ERR_SOCKETERROR:
    case NATPMP_ERR_CONNECTERR:
    case NATPMP_ERR_SENDERR:
    case NATPMP_ERR_RECVFROM: return fmt::format("socket error ({})", code);
    default: return fmt::format("error {}", code);
  }
}

// One NAT-PMP session with the default gateway: a connected UDP socket.
class Session {
 public:
  Session() {
    m_natpmp.s = -1;
    m_status = initnatpmp(&m_natpmp, 0, 0);
  }
  ~Session() {
    if (m_status == 0) {
      closenatpmp(&m_natpmp);
    } else if (m_natpmp.s >= 0) {
      ::close(m_natpmp.s);  // initnatpmp leaves it open when it fails after socket()
    }
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Result<void> opened() const {
    if (m_status != 0) return make_error(ErrorCode::unavailable, "NAT-PMP: {}", describe(m_status));
    return {};
  }
  [[nodiscard]] std::string gateway() const {
    in_addr addr{};
    addr.s_addr = m_natpmp.gateway;
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &addr, text, sizeof text);
    return text;
  }

  // Sends a request (`send` queues it in the session) and waits for its
  // answer, retransmitting on the library's schedule until the deadline.
  // An answer of another type or for another port (a late duplicate of an
  // earlier exchange) is skipped: the request is sent again.
  Result<natpmpresp_t> exchange(const std::function<int(natpmp_t*)>& send, std::uint16_t type,
                                std::uint16_t private_port) {
    if (const int sent = send(&m_natpmp); sent < 0) {
      return make_error(ErrorCode::unavailable, "NAT-PMP: {}", describe(sent));
    }
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    for (;;) {
      natpmpresp_t response{};
      const int read = readnatpmpresponseorretry(&m_natpmp, &response);
      if (read == 0) {
        const bool expected = response.type == type && (type == NATPMP_RESPTYPE_PUBLICADDRESS ||
                                                        response.pnu.newportmapping.privateport == private_port);
        if (expected) return response;
        if (const int sent = send(&m_natpmp); sent < 0) {
          return make_error(ErrorCode::unavailable, "NAT-PMP: {}", describe(sent));
        }
      } else if (read != NATPMP_TRYAGAIN) {
        return make_error(ErrorCode::unavailable, "NAT-PMP gateway {}: {}", gateway(), describe(read));
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        return make_error(ErrorCode::timed_out, "NAT-PMP gateway {}: no answer within {} ms", gateway(),
                          kDeadline.count());
      }
      timeval retry{};
      long wait_ms = left.count();
      if (getnatpmprequesttimeout(&m_natpmp, &retry) == 0) {
        wait_ms = std::clamp<long>(retry.tv_sec * 1000 + retry.tv_usec / 1000, 0, left.count());
      }
      pollfd fd{m_natpmp.s, POLLIN, 0};
      ::poll(&fd, 1, static_cast<int>(wait_ms));
    }
  }

 private:
  natpmp_t m_natpmp{};
  int m_status = 0;
};

}  // namespace

Result<MappingGrant> natpmp_map(const MappingRequest& request) {
  Session session;
  if (auto opened = session.opened(); !opened) return opened.error();
  auto address =
      session.exchange([](natpmp_t* p) { return sendpublicaddressrequest(p); }, NATPMP_RESPTYPE_PUBLICADDRESS, 0);
  if (!address) return address.error();
  char ip[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &address->pnu.publicaddress.addr, ip, sizeof ip);

  auto mapped = session.exchange(
      [&request](natpmp_t* p) {
        return sendnewportmappingrequest(p, NATPMP_PROTOCOL_TCP, request.internal_port, request.external_port,
                                         request.lifetime_s);
      },
      NATPMP_RESPTYPE_TCPPORTMAPPING, request.internal_port);
  if (!mapped) return mapped.error();
  MappingGrant grant;
  grant.protocol = MappingProtocol::natpmp;
  grant.external = HostPort{ip, mapped->pnu.newportmapping.mappedpublicport};
  grant.lifetime_s = mapped->pnu.newportmapping.lifetime;
  grant.gateway = session.gateway();
  if (grant.lifetime_s == 0) {
    // RFC 6886 §3.3: lifetime 0 in an answer means the mapping was not made.
    return make_error(ErrorCode::unavailable, "NAT-PMP gateway {}: granted a lifetime of 0", grant.gateway);
  }
  return grant;
}

Result<void> natpmp_unmap(const MappingRequest& request) {
  Session session;
  if (auto opened = session.opened(); !opened) return opened.error();
  // RFC 6886 §3.4: a request with lifetime 0 and suggested port 0 deletes.
  auto answer = session.exchange(
      [&request](natpmp_t* p) {
        return sendnewportmappingrequest(p, NATPMP_PROTOCOL_TCP, request.internal_port, 0, 0);
      },
      NATPMP_RESPTYPE_TCPPORTMAPPING, request.internal_port);
  if (!answer) return answer.error();
  return {};
}

}  // namespace p2pd::nat
