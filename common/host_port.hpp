#pragma once
// HOST:PORT as users write it: "127.0.0.1:7420", "[::1]:7420", "node.example:7420".

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace p2pd {

struct HostPort {
  std::string host;  // without brackets
  std::uint16_t port = 0;

  // The canonical spelling; IPv6 hosts get their brackets back.
  [[nodiscard]] std::string to_string() const;
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// `allow_port_zero`: port 0 asks the OS for a free port (listen addresses only).
Result<HostPort> parse_host_port(std::string_view text, bool allow_port_zero);

// True for an IPv4 or IPv6 address written out, false for a name.
bool is_ip_literal(std::string_view host);

}  // namespace p2pd
