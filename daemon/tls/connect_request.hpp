#pragma once
// The one HTTP request the local CONNECT proxy (secure_transport.hpp)
// understands: gRPC's "CONNECT host:port HTTP/1.x" with its headers
// (RFC 9110 §9.3.6), sent by this process's own channels over loopback.

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace p2pd::tls {

inline constexpr std::size_t kMaxConnectRequestBytes = 4096;

struct ConnectRequest {
  std::string target;         // host:port, as the channel names the peer
  std::string authorization;  // the Proxy-Authorization header's value; empty when absent
};

// `head`: the request up to and including the blank line that ends it.
Result<ConnectRequest> parse_connect_request(std::string_view head);

// The Proxy-Authorization value gRPC sends for a proxy URI with user info
// `user:password`: "Basic " and its base64.
std::string basic_authorization(std::string_view user_and_password);

}  // namespace p2pd::tls
