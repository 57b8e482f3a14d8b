#include "daemon/store/blob_id.hpp"

#include <openssl/sha.h>

#include <cstring>

#include "common/hex.hpp"

namespace p2pd::store {

BlobId BlobId::of(std::span<const std::uint8_t> data) {
  BlobId id;
  SHA256(data.data(), data.size(), id.m_bytes.data());
  return id;
}

BlobId BlobId::of(std::string_view data) {
  return of(std::span(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
}

std::optional<BlobId> BlobId::from_hex(std::string_view text) {
  if (text.size() != kHexDigits) return std::nullopt;
  auto bytes = p2pd::from_hex(text);
  if (!bytes || bytes->size() != kBytes) return std::nullopt;
  BlobId id;
  std::memcpy(id.m_bytes.data(), bytes->data(), kBytes);
  return id;
}

std::optional<BlobId> BlobId::from_bytes(std::string_view bytes) {
  if (bytes.size() != kBytes) return std::nullopt;
  BlobId id;
  std::memcpy(id.m_bytes.data(), bytes.data(), kBytes);
  return id;
}

std::string BlobId::hex() const {
  return to_hex(m_bytes);
}

NodeId BlobId::ring_key() const {
  return *NodeId::from_bytes(std::span(m_bytes.data(), NodeId::kBytes));
}

}  // namespace p2pd::store
