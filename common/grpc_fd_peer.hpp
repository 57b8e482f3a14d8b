#pragma once
// gRPC names the peer of a connection it was handed as a descriptor
// (AddInsecureChannelFromFd) "fd:N"; the daemon keeps, per descriptor, who
// is really on it (the control socket's callers, the peers' proven ids).

#include <charconv>
#include <optional>
#include <string_view>

namespace p2pd {

// N from "fd:N"; nullopt for any other peer string.
inline std::optional<int> fd_of_grpc_peer(std::string_view peer) {
  constexpr std::string_view kPrefix = "fd:";
  if (peer.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  const std::string_view digits = peer.substr(kPrefix.size());
  int fd = -1;
  const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), fd);
  if (err != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return fd;
}

}  // namespace p2pd
