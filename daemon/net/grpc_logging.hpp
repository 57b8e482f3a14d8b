#pragma once

namespace p2pd::net {

// gRPC and libprotobuf write their own diagnostics straight to stderr, which
// would break the one-line error contract and bypass log levels. These send
// them through common/log at debug level (category net); our own messages
// say what failed. libprotobuf logs a line for each string field of a
// peer's message that is not UTF-8, so a peer could write as many as it
// sends messages: its lines are also rate-limited. Call once at start-up,
// before other threads exist (neither library's setter is thread-safe).
void route_grpc_logs_to_our_log();
void route_protobuf_logs_to_our_log();

}  // namespace p2pd::net
