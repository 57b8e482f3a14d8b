// Fuzz target: the STUN codec (daemon/nat/stun_codec), which reads
// datagrams from the network. A message it accepts encodes back into one it
// accepts again, with the same transaction and mapped address.

#include <cstddef>
#include <cstdint>
#include <span>

#include "daemon/nat/stun_codec.hpp"
#include "tests/fuzz/fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace p2pd;
  const std::span<const std::uint8_t> datagram(data, size);
  (void)nat::message_integrity_matches(datagram, "VOkJxbRl1RmTxUk/WvJxBt");
  auto message = nat::decode_stun(datagram);
  if (!message) return 0;
  const auto reflexive = message->reflexive_address();
  if (!reflexive || reflexive->host.find(':') != std::string::npos) return 0;  // the encoder is IPv4 only
  const std::string again = nat::encode_binding_success(message->transaction, *reflexive);
  auto decoded = nat::decode_stun(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(again.data()), again.size()));
  FUZZ_CHECK(decoded.has_value());
  FUZZ_CHECK(decoded->transaction == message->transaction);
  FUZZ_CHECK(decoded->reflexive_address() == reflexive);
  FUZZ_CHECK(decoded->has_fingerprint);
  return 0;
}
