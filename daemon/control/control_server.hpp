#pragma once
// The gRPC control service on the unix socket (CONTRACT.md, p2pctl).

#include <sys/types.h>
#include <chrono>
#include <filesystem>
#include <memory>

#include "common/result.hpp"
#include "daemon/control/control_handler.hpp"

namespace grpc {
class Server;
}

namespace p2pd::control {

class ControlService;

class ControlServer {
 public:
  // Prepares the path, binds with mode 0660 and starts serving.
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
  std::filesystem::path m_path;
  ino_t m_inode = 0;
  std::unique_ptr<ControlService> m_service;
  std::unique_ptr<grpc::Server> m_server;
};

}  // namespace p2pd::control
