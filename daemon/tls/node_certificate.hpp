#pragma once
// What a node shows and checks in its TLS handshakes (DESIGN.md, "Security
// stance"). Each node presents a self-signed certificate for its own
// Ed25519 key; no authority signs it, because the key is the identity: the
// node id is the SHA-1 of the raw public key, and TLS 1.3's
// CertificateVerify (RFC 8446 §4.4.3) proves the peer holds that key. So a
// peer's id is read off its certificate, never taken from what it says.

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/node_id.hpp"
#include "common/result.hpp"
#include "daemon/tls/pool_secret.hpp"

namespace p2pd::tls {

struct X509Deleter {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

// The application protocol both ends must name (ALPN, RFC 7301): a TLS
// client that is not p2pd is refused in the handshake.
inline constexpr std::string_view kAlpn = "p2pd/1";

// A node's key and the certificate made for it at start.
class NodeCertificate {
 public:
  // `private_key_pem`: the node's Ed25519 key (PKCS#8 PEM). With `pool`,
  // the certificate carries the pool proof for this key.
  static Result<NodeCertificate> create(const std::string& private_key_pem, const PoolSecret* pool);

  [[nodiscard]] const NodeId& id() const { return m_id; }
  [[nodiscard]] X509* certificate() const { return m_cert.get(); }
  [[nodiscard]] EVP_PKEY* key() const { return m_key.get(); }

 private:
  NodeId m_id;
  PkeyPtr m_key;
  std::shared_ptr<X509> m_cert;  // shared: copies of the identity share it
};

// Sets `ctx` up for peer connections, either side: TLS 1.3 only, this
// node's certificate, a certificate required from the peer (checked by
// identify_peer after the handshake, not against authorities), ALPN
// kAlpn, and no session resumption (a resumed session shows no
// certificate).
Result<void> configure_context(SSL_CTX* ctx, const NodeCertificate& self, bool server);

// The id the peer proved on an established connection. With `pool`, the
// peer's certificate must carry the proof for its key; without, any
// p2pd key is welcome. Errors say why, in words for a log line.
Result<NodeId> identify_peer(SSL* ssl, const PoolSecret* pool);

// The id a certificate's key gives (for tests and tools).
Result<NodeId> node_id_of_certificate(X509* cert);

// OpenSSL's queued errors, as one line (and the queue cleared).
std::string openssl_errors();

}  // namespace p2pd::tls
