#pragma once

namespace p2pd::net {

// gRPC writes its own diagnostics straight to stderr, which would break the
// one-line error contract and bypass log levels. This sends them through
// common/log at debug level (category net); our own messages say what failed.
void route_grpc_logs_to_our_log();

}  // namespace p2pd::net
