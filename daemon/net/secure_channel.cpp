#include "daemon/net/secure_channel.hpp"

#include <grpcpp/support/channel_arguments.h>

#include "daemon/tls/secure_transport.hpp"

namespace p2pd::net {
namespace {

// gRPC's own names (src/core/lib/transport/http_connect_handshaker.h, not
// in its public headers); its CONNECT handshaker runs whenever a channel
// has the first.
constexpr const char* kHttpConnectServer = "grpc.http_connect_server";
constexpr const char* kHttpConnectHeaders = "grpc.http_connect_headers";

}  // namespace

std::string route_through(tls::SecureTransport& transport, const std::string& peer, grpc::ChannelArguments& args) {
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  args.SetString(kHttpConnectServer, peer);
  // "key:value" lines (gRPC's http_connect handshaker).
  args.SetString(kHttpConnectHeaders, "Proxy-Authorization:" + transport.proxy_authorization());
  return transport.proxy_target();
}

}  // namespace p2pd::net
