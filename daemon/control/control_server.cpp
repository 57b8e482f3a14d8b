#include "daemon/control/control_server.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include "common/log.hpp"
#include "daemon/control/control_socket.hpp"
#include "proto/control.grpc.pb.h"

namespace p2pd::control {

// Bounded input (house rule): control requests are small; bulk data will come
// as streams of chunks, each under this limit.
inline constexpr int kMaxControlMessageBytes = 4 << 20;

class ControlService final : public proto::Control::CallbackService {
 public:
  explicit ControlService(ControlHandler& handler) : m_handler(handler) {}

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context, const proto::StatusRequest* /*request*/,
                                   proto::StatusReply* reply) override {
    auto* reactor = context->DefaultReactor();
    // The reply object stays valid until Finish(): gRPC calls OnDone only after it.
    m_handler.get_status([reactor, reply](NodeStatus status) {
      reply->set_node_id(status.node_id);
      reply->set_listen(status.listen);
      for (auto& addr : status.observed_addrs) reply->add_observed_addrs(addr);
      reply->set_reachability(status.reachability);
      if (status.leader_id) reply->set_leader_id(*status.leader_id);
      reply->set_executor(status.executor);
      reply->set_executor_device(status.executor_device);
      reply->set_version(status.version);
      reply->set_uptime_s(status.uptime_s);
      reply->set_pid(status.pid);
      reply->set_state_dir(status.state_dir);
      for (auto& peer : status.bootstrap) {
        auto* out = reply->add_bootstrap();
        out->set_addr(peer.addr);
        if (peer.node_id) out->set_node_id(*peer.node_id);
        out->set_failures(peer.failures);
      }
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

 private:
  ControlHandler& m_handler;
};

Result<std::unique_ptr<ControlServer>> ControlServer::start(const std::filesystem::path& socket_path,
                                                            ControlHandler& handler) {
  if (auto prepared = prepare_control_socket_path(socket_path); !prepared) return prepared.error();

  std::unique_ptr<ControlServer> server(new ControlServer());
  server->m_path = socket_path;
  server->m_service = std::make_unique<ControlService>(handler);

  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_path.string(), grpc::InsecureServerCredentials());
  builder.RegisterService(server->m_service.get());
  builder.SetMaxReceiveMessageSize(kMaxControlMessageBytes);
  builder.SetMaxSendMessageSize(kMaxControlMessageBytes);
  // The socket must never be world-accessible, not even for an instant, and a
  // chmod() after bind() would follow a symlink swapped in meanwhile: bind
  // under a umask that leaves exactly 0660. The umask is process-wide, so
  // this runs before the daemon starts threads that create files.
  const mode_t old_umask = ::umask(0117);
  server->m_server = builder.BuildAndStart();
  ::umask(old_umask);
  if (!server->m_server) {
    return make_error(ErrorCode::unavailable, "cannot serve the control socket {} (bind failed)", socket_path.string());
  }
  auto inode = verify_control_socket(socket_path);
  if (!inode) {
    server->m_server->Shutdown();
    server->m_server.reset();
    ::unlink(socket_path.c_str());  // ours, just bound, but not as it must be
    return inode.error();
  }
  server->m_inode = *inode;
  log::info(log::Category::control, "control socket {} (mode 0660)", socket_path.string());
  return server;
}

void ControlServer::shutdown(std::chrono::milliseconds grace) {
  if (!m_server) return;
  m_server->Shutdown(std::chrono::system_clock::now() + grace);
  m_server->Wait();
  m_server.reset();
  remove_control_socket(m_path, m_inode);
}

ControlServer::~ControlServer() {
  shutdown(std::chrono::milliseconds(0));
}

}  // namespace p2pd::control
