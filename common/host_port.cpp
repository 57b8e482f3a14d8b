#include "common/host_port.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>

namespace p2pd {
namespace {

bool valid_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

}  // namespace

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<HostPort> parse_host_port(std::string_view text, bool allow_port_zero) {
  constexpr std::size_t kMaxHostLength = 253;  // RFC 1035 §2.3.4
  std::string_view host;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return make_error(ErrorCode::invalid_argument, "'{}' is not HOST:PORT ([IPv6]:PORT for IPv6)", text);
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    in6_addr parsed{};
    if (host.size() >= INET6_ADDRSTRLEN || ::inet_pton(AF_INET6, std::string(host).c_str(), &parsed) != 1) {
      return make_error(ErrorCode::invalid_argument, "'{}' has an invalid IPv6 address", text);
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return make_error(ErrorCode::invalid_argument, "'{}' is not HOST:PORT (the port is missing)", text);
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return make_error(ErrorCode::invalid_argument, "'{}': write IPv6 addresses as [ADDRESS]:PORT", text);
    }
    for (char c : host) {
      if (!valid_host_char(c)) return make_error(ErrorCode::invalid_argument, "'{}' has an invalid host name", text);
    }
  }
  if (host.empty()) return make_error(ErrorCode::invalid_argument, "'{}' has an empty host", text);
  if (host.size() > kMaxHostLength)
    return make_error(ErrorCode::invalid_argument, "host name in '{}' is too long", text);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535) {
    return make_error(ErrorCode::invalid_argument, "'{}' has an invalid port (expected 0-65535)", text);
  }
  if (port == 0 && !allow_port_zero) {
    return make_error(ErrorCode::invalid_argument, "'{}': port 0 is only allowed for --listen", text);
  }
  return HostPort{std::string(host), static_cast<std::uint16_t>(port)};
}

bool is_ip_literal(std::string_view host) {
  if (host.empty() || host.size() >= INET6_ADDRSTRLEN) return false;
  const std::string text(host);
  in6_addr parsed{};
  return ::inet_pton(AF_INET, text.c_str(), &parsed) == 1 || ::inet_pton(AF_INET6, text.c_str(), &parsed) == 1;
}

}  // namespace p2pd
