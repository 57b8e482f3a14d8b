#include "daemon/net/grpc_logging.hpp"

#include <grpc/support/log.h>

#include "common/log.hpp"

namespace p2pd::net {

void route_grpc_logs_to_our_log() {
  gpr_set_log_function([](gpr_log_func_args* args) {
    if (args == nullptr || args->message == nullptr) return;
    log::debug(log::Category::net, "grpc: {}", args->message);
  });
}

}  // namespace p2pd::net
