// Fuzz target: the CONNECT request parser of the transport's loopback proxy
// (daemon/tls/connect_request), which reads bytes from any local process
// before it checks the password. What it accepts is a sane target and an
// authorization header of printable text.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/tls/connect_request.hpp"
#include "tests/fuzz/fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace p2pd;
  const std::string_view head(reinterpret_cast<const char*>(data), size);
  auto request = tls::parse_connect_request(head);
  if (!request) return 0;
  FUZZ_CHECK(size <= tls::kMaxConnectRequestBytes);
  FUZZ_CHECK(!request->target.empty());
  FUZZ_CHECK(request->target.find(' ') == std::string::npos);
  const auto printable = [](char c) { return c >= 0x20 && c < 0x7f; };
  FUZZ_CHECK(std::all_of(request->target.begin(), request->target.end(), printable));
  FUZZ_CHECK(std::all_of(request->authorization.begin(), request->authorization.end(), printable));
  return 0;
}
