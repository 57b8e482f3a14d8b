#pragma once
// How a gRPC channel to a peer goes through the TLS transport's CONNECT
// proxy (tls/secure_transport.hpp). The channel dials the proxy itself and
// names the peer in the CONNECT request (GRPC_ARG_HTTP_CONNECT_SERVER),
// rather than using GRPC_ARG_HTTP_PROXY: gRPC's proxy mapper honours
// no_proxy/no_grpc_proxy from the environment, and a match there would send
// the call around the proxy, in the clear.

#include <string>

namespace grpc {
class ChannelArguments;
}  // namespace grpc

namespace p2pd::tls {
class SecureTransport;
}  // namespace p2pd::tls

namespace p2pd::net {

// Sets `args` up for a channel to `peer` (HOST:PORT) and returns the target
// to create it with.
std::string route_through(tls::SecureTransport& transport, const std::string& peer, grpc::ChannelArguments& args);

}  // namespace p2pd::net
