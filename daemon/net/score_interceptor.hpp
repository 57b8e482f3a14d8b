#pragma once
// Scores every peer call that is refused as malformed (INVALID_ARGUMENT,
// whichever service refused it) against the caller's address: one place
// for every service, so no handler can forget it (peer_scores.hpp).

#include <grpcpp/support/server_interceptor.h>

#include <functional>
#include <memory>
#include <string>

#include "daemon/net/peer_connections.hpp"
#include "daemon/net/peer_scores.hpp"

namespace p2pd::net {

// `banned(address)` runs, on a gRPC thread, when a call's penalty bans its address.
// `connections` names each call's caller; only connections accepted on the
// peer port are scored (a relayed caller's address is the relay's).
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> make_score_keeper(
    PeerScores& scores, const PeerConnections& connections, std::function<void(const std::string& address)> banned);

}  // namespace p2pd::net
