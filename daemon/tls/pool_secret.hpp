#pragma once
// A closed pool's shared secret (--pool-secret-file). Members prove they
// hold it without sending it: each node's certificate carries
// HMAC-SHA256(secret, "p2pd pool v1" || its public key), which only a
// holder of the secret can make, and which is useless to anyone without
// the matching private key (the TLS handshake proves that key).

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>

#include "common/result.hpp"

namespace p2pd::tls {

inline constexpr std::size_t kPoolProofBytes = 32;
using PoolProof = std::array<std::uint8_t, kPoolProofBytes>;

class PoolSecret {
 public:
  static constexpr std::size_t kMinBytes = 16;
  static constexpr std::size_t kMaxBytes = 4096;

  // The file's bytes, a trailing newline (or any trailing whitespace)
  // removed. Refused: missing, empty, shorter than kMinBytes, larger than
  // kMaxBytes, or readable by users other than its owner and group.
  static Result<PoolSecret> load(const std::filesystem::path& file);
  // For tests.
  static Result<PoolSecret> from_bytes(std::string bytes);

  // What a node with `public_key` (raw Ed25519) presents; nullopt if the
  // HMAC cannot be made (an OpenSSL failure: never a proof of zeros).
  [[nodiscard]] std::optional<PoolProof> proof_for(std::span<const std::uint8_t> public_key) const;
  // Whether `proof` is right for `public_key` (compared in constant time).
  [[nodiscard]] bool verify(std::span<const std::uint8_t> public_key, std::span<const std::uint8_t> proof) const;

 private:
  explicit PoolSecret(std::string bytes) : m_bytes(std::move(bytes)) {}
  std::string m_bytes;
};

}  // namespace p2pd::tls
