#include "daemon/net/score_interceptor.hpp"

#include <grpcpp/server_context.h>

#include "daemon/net/peer_listener.hpp"
#include "daemon/net/peer_server.hpp"

namespace p2pd::net {
namespace {

using grpc::experimental::InterceptionHookPoints;

class ScoreInterceptor final : public grpc::experimental::Interceptor {
 public:
  ScoreInterceptor(PeerScores& scores, const PeerConnections& connections,
                   const std::function<void(const std::string&)>& banned, grpc::ServerContextBase* context)
      : m_scores(scores), m_connections(connections), m_banned(banned), m_context(context) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) && m_context != nullptr &&
        methods->GetSendStatus().error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      // Only callers we accepted have an address; punched and relayed
      // connections are not scored.
      const auto caller = m_connections.find(m_context->peer());
      if (caller && caller->accepted_from) {
        const std::string address = address_key(caller->accepted_from->host);
        if (m_scores.penalize(address, kMalformedMessagePoints, PeerScores::Clock::now())) m_banned(address);
      }
    }
    methods->Proceed();
  }

 private:
  PeerScores& m_scores;
  const PeerConnections& m_connections;
  const std::function<void(const std::string&)>& m_banned;
  grpc::ServerContextBase* m_context;
};

class ScoreKeeperFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  ScoreKeeperFactory(PeerScores& scores, const PeerConnections& connections,
                     std::function<void(const std::string&)> banned)
      : m_scores(scores), m_connections(connections), m_banned(std::move(banned)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    return new ScoreInterceptor(m_scores, m_connections, m_banned, info->server_context());
  }

 private:
  PeerScores& m_scores;
  const PeerConnections& m_connections;
  const std::function<void(const std::string&)> m_banned;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> make_score_keeper(
    PeerScores& scores, const PeerConnections& connections, std::function<void(const std::string& address)> banned) {
  return std::make_unique<ScoreKeeperFactory>(scores, connections, std::move(banned));
}

}  // namespace p2pd::net
