#pragma once
// The dialling side of a reachability check (peer.proto, Peer.DialBack): a
// fresh connection to the address a caller names, from an ephemeral port of
// ours (a pooled connection, or our listen port, would prove nothing or
// punch a hole by accident), and a Ping that must be answered by the caller.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/host_port.hpp"
#include "common/node_id.hpp"

namespace p2pd::tls {
class SecureTransport;
}  // namespace p2pd::tls

namespace p2pd::net {

class DialBacker {
 public:
  // Dials in flight at once, counting the recently finished ones whose
  // connections are still being torn down, and one per caller IP; more are
  // refused (a peer cannot make us dial the world, nor hold every slot). A
  // dial that connects to nothing gives up after the timeout.
  static constexpr std::size_t kMaxInFlight = 16;
  static constexpr std::chrono::milliseconds kDialTimeout{3000};

  // Dials over `transport` (TLS), which must outlive it.
  explicit DialBacker(tls::SecureTransport& transport);
  ~DialBacker();
  DialBacker(const DialBacker&) = delete;
  DialBacker& operator=(const DialBacker&) = delete;

  // False (and `done` is never called) when too many dials are in flight,
  // or one for the same IP.
  // Otherwise `done(reached, error)` runs once, on a gRPC thread.
  bool dial(const HostPort& target, const NodeId& expected, std::function<void(bool, std::string)> done);

 private:
  struct Dial;
  tls::SecureTransport& m_transport;
  std::mutex m_mutex;
  std::condition_variable m_idle;
  std::size_t m_callbacks_running = 0;  // the destructor waits for them
  std::set<std::string> m_busy_hosts;
  std::vector<std::unique_ptr<Dial>> m_in_flight;
  // Finished dials are freed by a later dial once they have been finished
  // for a while, or at destruction: a channel must not die inside its own
  // callback, nor while that callback is still returning (see
  // PeerClient::unary).
  std::vector<std::unique_ptr<Dial>> m_finished;
};

}  // namespace p2pd::net
