#pragma once
// The gRPC control service on the unix socket (CONTRACT.md, p2pctl).

#include <sys/types.h>
#include <chrono>
#include <filesystem>
#include <memory>

#include "common/log_limiter.hpp"
#include "common/result.hpp"
#include "daemon/control/control_handler.hpp"

namespace grpc {
class Server;
}

namespace p2pd::control {

class ControlService;
class RefusalService;
class ControlListener;
class CallerRegistry;
struct Caller;

class ControlServer {
 public:
  // Prepares the path, binds with mode 0660 and starts serving: the socket's
  // owner, root and members of its group (caller.hpp); others' calls are
  // answered PERMISSION_DENIED.
  static Result<std::unique_ptr<ControlServer>> start(const std::filesystem::path& socket_path,
                                                      ControlHandler& handler);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Stops accepting calls, lets calls in flight finish until `grace` runs out,
  // cancels the rest and removes the socket file. Idempotent.
  void shutdown(std::chrono::milliseconds grace);

 private:
  ControlServer() = default;
  // On the listener's thread: serve the connection, or refuse its calls.
  void on_connection(int fd, Caller caller);

  std::filesystem::path m_path;
  uid_t m_owner = 0;
  std::unique_ptr<ControlListener> m_listener;
  std::unique_ptr<CallerRegistry> m_callers;
  std::unique_ptr<ControlService> m_service;
  std::unique_ptr<RefusalService> m_refusal;
  std::unique_ptr<grpc::Server> m_server;          // callers that may use the socket
  std::unique_ptr<grpc::Server> m_refusal_server;  // the others: every call refused
  log::Limiter m_refusal_log{5, std::chrono::minutes(1)};
};

}  // namespace p2pd::control
