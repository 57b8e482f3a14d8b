#include "daemon/tls/node_certificate.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <array>
#include <cstring>

namespace p2pd::tls {
namespace {

// The pool proof's certificate extension: an OID under 2.25 (a UUID as an
// OID, ITU-T X.667), so no registration is needed. Non-critical, so other
// TLS stacks would ignore it; ours reads it.
constexpr const char* kPoolProofOid = "2.25.262616778046149261862228672387830346903";

constexpr std::size_t kEd25519KeyBytes = 32;
// Certificates live as long as the key: the key is what peers check.
constexpr long kValiditySeconds = 100L * 365 * 24 * 3600;

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct ObjectDeleter {
  void operator()(ASN1_OBJECT* object) const { ASN1_OBJECT_free(object); }
};
struct OctetsDeleter {
  void operator()(ASN1_OCTET_STRING* octets) const { ASN1_OCTET_STRING_free(octets); }
};
struct ExtensionDeleter {
  void operator()(X509_EXTENSION* extension) const { X509_EXTENSION_free(extension); }
};

std::unique_ptr<ASN1_OBJECT, ObjectDeleter> pool_proof_oid() {
  return std::unique_ptr<ASN1_OBJECT, ObjectDeleter>(OBJ_txt2obj(kPoolProofOid, 1));
}

Result<std::array<std::uint8_t, kEd25519KeyBytes>> raw_public_key(EVP_PKEY* key) {
  if (key == nullptr || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
    return make_error(ErrorCode::invalid_argument, "its key is not an Ed25519 key");
  }
  std::array<std::uint8_t, kEd25519KeyBytes> raw{};
  std::size_t length = raw.size();
  if (EVP_PKEY_get_raw_public_key(key, raw.data(), &length) != 1 || length != raw.size()) {
    return make_error(ErrorCode::invalid_argument, "its public key cannot be read: {}", openssl_errors());
  }
  return raw;
}

int accept_any_chain(int /*preverified*/, X509_STORE_CTX* /*store*/) {
  // No authority vouches for a node: its key is its name, and identify_peer
  // checks the key (and the pool proof) once the handshake proved it.
  return 1;
}

int select_p2pd_protocol(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
                         unsigned int in_length, void* /*arg*/) {
  // `in`: the client's list, each name prefixed by its length.
  for (unsigned int at = 0; at < in_length;) {
    const unsigned int length = in[at];
    if (at + 1 + length > in_length) break;
    if (length == kAlpn.size() && std::memcmp(in + at + 1, kAlpn.data(), length) == 0) {
      *out = in + at + 1;
      *out_length = static_cast<unsigned char>(length);
      return SSL_TLSEXT_ERR_OK;
    }
    at += 1 + length;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

}  // namespace

std::string openssl_errors() {
  std::string text;
  while (const unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? "no detail from OpenSSL" : text;
}

Result<NodeCertificate> NodeCertificate::create(const std::string& private_key_pem, const PoolSecret* pool) {
  std::unique_ptr<BIO, BioDeleter> bio(
      BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size())));
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) return make_error(ErrorCode::corrupt, "the node key cannot be read: {}", openssl_errors());
  auto raw = raw_public_key(key.get());
  if (!raw) return make_error(ErrorCode::corrupt, "the node key: {}", raw.error().message);

  NodeCertificate made;
  made.m_id = NodeId::hash_of(std::span<const std::uint8_t>(*raw));
  X509Ptr cert(X509_new());
  if (!cert) return make_error(ErrorCode::internal, "cannot make a certificate: {}", openssl_errors());
  std::array<std::uint8_t, 16> serial_bytes{};
  RAND_bytes(serial_bytes.data(), static_cast<int>(serial_bytes.size()));
  serial_bytes[0] &= 0x7f;  // a positive serial number (RFC 5280 §4.1.2.2)
  BIGNUM* serial = BN_bin2bn(serial_bytes.data(), static_cast<int>(serial_bytes.size()), nullptr);
  const bool serial_set = serial != nullptr && BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert.get())) != nullptr;
  BN_free(serial);
  X509_NAME* name = X509_get_subject_name(cert.get());
  const std::string common_name = "p2pd node " + made.m_id.hex();
  bool ok = serial_set && X509_set_version(cert.get(), 2) == 1 &&
            X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(cert.get()), kValiditySeconds) != nullptr &&
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0) == 1 &&
            X509_set_issuer_name(cert.get(), name) == 1 && X509_set_pubkey(cert.get(), key.get()) == 1;
  if (ok && pool != nullptr) {
    const auto proof = pool->proof_for(*raw);
    std::unique_ptr<ASN1_OCTET_STRING, OctetsDeleter> octets(ASN1_OCTET_STRING_new());
    auto oid = pool_proof_oid();
    ok = proof && octets && oid &&
         ASN1_OCTET_STRING_set(octets.get(), proof->data(), static_cast<int>(proof->size())) == 1;
    if (ok) {
      std::unique_ptr<X509_EXTENSION, ExtensionDeleter> extension(
          X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 0, octets.get()));
      ok = extension && X509_add_ext(cert.get(), extension.get(), -1) == 1;
    }
  }
  // Ed25519 signs without a separate digest.
  if (!ok || X509_sign(cert.get(), key.get(), nullptr) == 0) {
    return make_error(ErrorCode::internal, "cannot make the node certificate: {}", openssl_errors());
  }
  made.m_key = std::move(key);
  made.m_cert = std::shared_ptr<X509>(cert.release(), X509_free);
  return made;
}

Result<void> configure_context(SSL_CTX* ctx, const NodeCertificate& self, bool server) {
  const bool ok = SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1 &&
                  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1 &&
                  SSL_CTX_use_certificate(ctx, self.certificate()) == 1 &&
                  SSL_CTX_use_PrivateKey(ctx, self.key()) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  if (!ok) return make_error(ErrorCode::internal, "cannot set up TLS: {}", openssl_errors());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any_chain);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  if (server) {
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_alpn_select_cb(ctx, select_p2pd_protocol, nullptr);
  } else {
    std::string protocols(1, static_cast<char>(kAlpn.size()));
    protocols += kAlpn;
    if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(protocols.data()),
                                static_cast<unsigned int>(protocols.size())) != 0) {
      return make_error(ErrorCode::internal, "cannot set up TLS: {}", openssl_errors());
    }
  }
  return {};
}

Result<NodeId> node_id_of_certificate(X509* cert) {
  if (cert == nullptr) return make_error(ErrorCode::invalid_argument, "it showed no certificate");
  auto raw = raw_public_key(X509_get0_pubkey(cert));
  if (!raw) return raw.error();
  return NodeId::hash_of(std::span<const std::uint8_t>(*raw));
}

Result<NodeId> identify_peer(SSL* ssl, const PoolSecret* pool) {
  if (SSL_version(ssl) != TLS1_3_VERSION) return make_error(ErrorCode::invalid_argument, "it did not speak TLS 1.3");
  const unsigned char* protocol = nullptr;
  unsigned int protocol_length = 0;
  SSL_get0_alpn_selected(ssl, &protocol, &protocol_length);
  if (protocol_length != kAlpn.size() || std::memcmp(protocol, kAlpn.data(), protocol_length) != 0) {
    return make_error(ErrorCode::invalid_argument, "it does not speak {}", kAlpn);
  }
  X509* cert = SSL_get0_peer_certificate(ssl);
  auto raw = cert != nullptr ? raw_public_key(X509_get0_pubkey(cert))
                             : Result<std::array<std::uint8_t, kEd25519KeyBytes>>(
                                   make_error(ErrorCode::invalid_argument, "it showed no certificate"));
  if (!raw) return raw.error();
  const NodeId id = NodeId::hash_of(std::span<const std::uint8_t>(*raw));
  if (pool != nullptr) {
    auto oid = pool_proof_oid();
    const int at = oid ? X509_get_ext_by_OBJ(cert, oid.get(), -1) : -1;
    if (at < 0) {
      return make_error(ErrorCode::permission_denied, "node {} has no proof of this pool's secret (--pool-secret-file)",
                        id.short_hex());
    }
    const ASN1_OCTET_STRING* proof = X509_EXTENSION_get_data(X509_get_ext(cert, at));
    if (proof == nullptr || !pool->verify(*raw, std::span(ASN1_STRING_get0_data(proof),
                                                          static_cast<std::size_t>(ASN1_STRING_length(proof))))) {
      return make_error(ErrorCode::permission_denied,
                        "node {} proves another pool's secret, not this one's (--pool-secret-file)", id.short_hex());
    }
  }
  return id;
}

}  // namespace p2pd::tls
