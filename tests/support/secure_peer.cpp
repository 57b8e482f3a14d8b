#include "tests/support/secure_peer.hpp"

#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>
#include <stdexcept>

#include "daemon/net/secure_channel.hpp"

namespace p2pd::test {

std::string new_node_key_pem() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  BIO* bio = BIO_new(BIO_s_mem());
  if (key == nullptr || bio == nullptr ||
      PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    throw std::runtime_error("cannot make a test key");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

std::unique_ptr<tls::SecureTransport> make_transport(const tls::PoolSecret* pool,
                                                     std::chrono::milliseconds write_stall_limit) {
  auto certificate = tls::NodeCertificate::create(new_node_key_pem(), pool);
  if (!certificate) throw std::runtime_error(certificate.error().message);
  auto transport = tls::SecureTransport::start(std::move(*certificate),
                                               pool != nullptr ? std::optional<tls::PoolSecret>(*pool) : std::nullopt,
                                               write_stall_limit);
  if (!transport) throw std::runtime_error(transport.error().message);
  return std::move(*transport);
}

std::shared_ptr<grpc::Channel> secure_channel(tls::SecureTransport& transport, const std::string& peer) {
  grpc::ChannelArguments args;
  const std::string target = net::route_through(transport, peer, args);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

SecurePeerPort::SecurePeerPort(grpc::Server& server, tls::SecureTransport& transport) {
  m_listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  if (m_listen_fd < 0 || ::bind(m_listen_fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(m_listen_fd, 64) != 0 || ::getsockname(m_listen_fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    throw std::runtime_error("cannot listen for the test peer");
  }
  m_port = ntohs(address.sin_port);
  m_thread = std::thread([this, &server, &transport] {
    while (!m_stop) {
      pollfd waiting{m_listen_fd, POLLIN, 0};
      if (::poll(&waiting, 1, 50) <= 0) continue;
      const int fd = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) continue;
      transport.secure_inbound(fd, std::nullopt, [&server](Result<tls::SecuredConnection> secured) {
        if (secured) grpc::AddInsecureChannelFromFd(&server, secured->fd);
      });
    }
  });
}

SecurePeerPort::~SecurePeerPort() {
  m_stop = true;
  if (m_thread.joinable()) m_thread.join();
  if (m_listen_fd >= 0) ::close(m_listen_fd);
}

}  // namespace p2pd::test
