#pragma once
// Raw TCP on loopback for tests that play a peer (or a stranger) at the
// byte level: connecting from a chosen loopback address, and seeing the
// other side close.

#include <chrono>
#include <cstdint>

namespace p2pd::test {

// A blocking connection to 127.0.0.1:`port`, from `source` when given
// (another loopback address stands for another host); -1 on failure.
int connect_tcp(std::uint16_t port, const char* source = nullptr);

// The peer closed this connection (EOF or reset) by `deadline`; what it
// sent first (a gRPC server's SETTINGS, say) is read and dropped.
bool closed_by_peer(int fd, std::chrono::steady_clock::time_point deadline);

}  // namespace p2pd::test
