#pragma once
// Outgoing TCP connections from a chosen local port that other sockets of
// ours may share (SO_REUSEADDR + SO_REUSEPORT). Hole punching learns a
// port's public mapping over one connection (to a public peer) and, while
// that connection holds the mapping open, punches from the same port with
// another (RFC 5128 section 3.3; RFC 5382 REQ-1: an endpoint-independent
// NAT gives both the same public port).

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>

#include "common/host_port.hpp"
#include "common/result.hpp"

namespace p2pd::net {

struct ConnectedSocket {
  int fd = -1;  // connected, non-blocking; the callee owns it
  std::uint16_t local_port = 0;
};

// Connects from `local_port` (0: a new ephemeral port) to `remote`, an IP
// address. `done` runs once on `io`: the socket, or why it did not connect
// within `timeout` (a SYN that a NAT drops is retransmitted by the kernel
// meanwhile, which is what lets two simultaneous opens meet).
void connect_from(boost::asio::io_context& io, std::uint16_t local_port, const HostPort& remote,
                  std::chrono::milliseconds timeout, std::function<void(Result<ConnectedSocket>)> done);

}  // namespace p2pd::net
