#include "daemon/tls/pool_secret.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <string_view>

#include "common/atomic_file.hpp"

namespace p2pd::tls {
namespace {

constexpr std::string_view kProofLabel = "p2pd pool v1";

}  // namespace

Result<PoolSecret> PoolSecret::load(const std::filesystem::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    return make_error(ErrorCode::not_found, "pool secret file {} cannot be read: {}", file.string(),
                      std::strerror(errno));
  }
  // The secret is the pool's door key: like the node key, not for others.
  if ((st.st_mode & 007) != 0) {
    return make_error(ErrorCode::permission_denied,
                      "pool secret file {} is accessible by others (mode {:o}); run: chmod 640 {}", file.string(),
                      st.st_mode & 07777, file.string());
  }
  auto bytes = read_small_file(file, kMaxBytes);
  if (!bytes) return make_error(bytes.error().code, "pool secret file: {}", bytes.error().message);
  auto secret = from_bytes(std::move(*bytes));
  if (!secret) return make_error(secret.error().code, "pool secret file {}: {}", file.string(), secret.error().message);
  return secret;
}

Result<PoolSecret> PoolSecret::from_bytes(std::string bytes) {
  while (!bytes.empty() &&
         (bytes.back() == '\n' || bytes.back() == '\r' || bytes.back() == ' ' || bytes.back() == '\t')) {
    bytes.pop_back();
  }
  if (bytes.size() < kMinBytes) {
    return make_error(ErrorCode::invalid_argument,
                      "the secret is {} bytes, at least {} are needed (make one: openssl rand -hex 32)", bytes.size(),
                      kMinBytes);
  }
  if (bytes.size() > kMaxBytes) {
    return make_error(ErrorCode::invalid_argument, "the secret is larger than {} bytes", kMaxBytes);
  }
  return PoolSecret(std::move(bytes));
}

std::optional<PoolProof> PoolSecret::proof_for(std::span<const std::uint8_t> public_key) const {
  std::string message(kProofLabel);
  message.append(reinterpret_cast<const char*>(public_key.data()), public_key.size());
  PoolProof proof{};
  std::size_t length = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, m_bytes.data(), m_bytes.size(),
                reinterpret_cast<const unsigned char*>(message.data()), message.size(), proof.data(), proof.size(),
                &length) == nullptr ||
      length != proof.size()) {
    return std::nullopt;
  }
  return proof;
}

bool PoolSecret::verify(std::span<const std::uint8_t> public_key, std::span<const std::uint8_t> proof) const {
  if (proof.size() != kPoolProofBytes) return false;
  const auto expected = proof_for(public_key);
  return expected && CRYPTO_memcmp(expected->data(), proof.data(), kPoolProofBytes) == 0;
}

}  // namespace p2pd::tls
