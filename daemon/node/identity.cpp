#include "daemon/node/identity.hpp"

#include <sys/stat.h>

#include <memory>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/atomic_file.hpp"

namespace p2pd::node {
namespace {

constexpr std::size_t kMaxKeyFileBytes = 16 * 1024;

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

std::string openssl_error() {
  const unsigned long code = ERR_get_error();
  if (code == 0) return "unknown OpenSSL error";
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof buffer);
  ERR_clear_error();
  return buffer;
}

Result<NodeIdentity> identity_from_key(EVP_PKEY* key, std::string pem) {
  if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
    return make_error(ErrorCode::corrupt, "the node key is not an Ed25519 key");
  }
  NodeIdentity identity;
  std::size_t length = 32;
  identity.public_key.resize(length);
  if (EVP_PKEY_get_raw_public_key(key, identity.public_key.data(), &length) != 1 || length != 32) {
    return make_error(ErrorCode::corrupt, "cannot read the public key: {}", openssl_error());
  }
  identity.id = NodeId::hash_of(identity.public_key);
  identity.private_key_pem = std::move(pem);
  return identity;
}

Result<NodeIdentity> create_identity(const std::filesystem::path& file) {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return make_error(ErrorCode::internal, "cannot generate an Ed25519 key: {}", openssl_error());
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return make_error(ErrorCode::internal, "cannot encode the node key: {}", openssl_error());
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  std::string pem(data, static_cast<std::size_t>(size));
  if (auto written = write_file_atomically(file, pem, 0600); !written) return written.error();
  auto identity = identity_from_key(key.get(), std::move(pem));
  if (identity) identity->created = true;
  return identity;
}

}  // namespace

Result<NodeIdentity> load_or_create_identity(const std::filesystem::path& state_dir) {
  const auto file = state_dir / kNodeKeyFile;
  // Like ssh with its keys: a private key others can read is not private.
  if (struct stat st{}; ::stat(file.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    return make_error(ErrorCode::permission_denied,
                      "node key {} is accessible by group or others (mode {:o}); run: chmod 600 {}", file.string(),
                      st.st_mode & 07777, file.string());
  }
  auto pem = read_small_file(file, kMaxKeyFileBytes);
  if (!pem) {
    if (pem.error().code == ErrorCode::not_found) return create_identity(file);
    return make_error(pem.error().code, "node key: {}", pem.error().message);
  }
  BioPtr bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) {
    return make_error(ErrorCode::corrupt,
                      "node key {} is unreadable ({}); move it away to create a new identity (the node id will change)",
                      file.string(), openssl_error());
  }
  auto identity = identity_from_key(key.get(), std::move(*pem));
  if (!identity) {
    return make_error(ErrorCode::corrupt, "node key {}: {}", file.string(), identity.error().message);
  }
  return identity;
}

}  // namespace p2pd::node
