#include "daemon/net/grpc_logging.hpp"

#include <chrono>
#include <string>

#include <google/protobuf/stubs/logging.h>
#include <grpc/support/log.h>

#include "common/log.hpp"
#include "common/log_limiter.hpp"

namespace p2pd::net {
namespace {

// Ten lines a minute; the next line written says how many were held back.
log::Limiter& protobuf_lines() {
  static log::Limiter limiter(10, std::chrono::minutes(1));
  return limiter;
}

void log_protobuf(google::protobuf::LogLevel level, const char* /*filename*/, int /*line*/,
                  const std::string& message) {
  // A FATAL is followed by an abort: it is written whatever the limit.
  if (level == google::protobuf::LOGLEVEL_FATAL) {
    log::error(log::Category::net, "protobuf: {}", message);
    return;
  }
  if (!log::enabled(log::Level::debug)) return;
  const auto held_back = protobuf_lines().admit();
  if (!held_back) return;
  log::debug(log::Category::net, "protobuf: {}{}", message, log::held_back_note(*held_back));
}

}  // namespace

void route_grpc_logs_to_our_log() {
  gpr_set_log_function([](gpr_log_func_args* args) {
    if (args == nullptr || args->message == nullptr) return;
    log::debug(log::Category::net, "grpc: {}", args->message);
  });
}

void route_protobuf_logs_to_our_log() {
  google::protobuf::SetLogHandler(&log_protobuf);
}

}  // namespace p2pd::net
