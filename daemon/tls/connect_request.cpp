#include "daemon/tls/connect_request.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

namespace p2pd::tls {
namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool printable(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

}  // namespace

Result<ConnectRequest> parse_connect_request(std::string_view head) {
  if (head.size() > kMaxConnectRequestBytes) return make_error(ErrorCode::invalid_argument, "request too large");
  if (head.size() < 4 || head.substr(head.size() - 4) != "\r\n\r\n") {
    return make_error(ErrorCode::invalid_argument, "request does not end with a blank line");
  }
  head.remove_suffix(2);  // each line now ends with "\r\n"
  ConnectRequest request;
  bool first = true;
  while (!head.empty()) {
    const auto end = head.find("\r\n");
    if (end == std::string_view::npos) return make_error(ErrorCode::invalid_argument, "malformed line");
    const std::string_view line = head.substr(0, end);
    head.remove_prefix(end + 2);
    if (!printable(line)) return make_error(ErrorCode::invalid_argument, "request holds unprintable bytes");
    if (first) {
      first = false;
      constexpr std::string_view kMethod = "CONNECT ";
      if (line.substr(0, kMethod.size()) != kMethod) return make_error(ErrorCode::invalid_argument, "not a CONNECT");
      const std::string_view rest = line.substr(kMethod.size());
      const auto space = rest.find(' ');
      if (space == std::string_view::npos || space == 0 || rest.substr(space + 1).substr(0, 5) != "HTTP/") {
        return make_error(ErrorCode::invalid_argument, "malformed request line");
      }
      request.target = std::string(rest.substr(0, space));
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return make_error(ErrorCode::invalid_argument, "malformed header line");
    }
    if (equals_ignoring_case(trim(line.substr(0, colon)), "Proxy-Authorization")) {
      request.authorization = std::string(trim(line.substr(colon + 1)));
    }
  }
  if (first) return make_error(ErrorCode::invalid_argument, "empty request");
  return request;
}

std::string basic_authorization(std::string_view user_and_password) {
  std::string encoded(4 * ((user_and_password.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                     reinterpret_cast<const unsigned char*>(user_and_password.data()),
                                     static_cast<int>(user_and_password.size()));
  encoded.resize(static_cast<std::size_t>(std::max(length, 0)));
  return "Basic " + encoded;
}

}  // namespace p2pd::tls
