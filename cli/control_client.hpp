#pragma once
// One RPC to the local p2pd, with the global timeout, and every gRPC failure
// turned into one line a user can act on.

#include <filesystem>
#include <memory>

#include "cli/cli_args.hpp"
#include "common/result.hpp"
#include "proto/control.grpc.pb.h"

namespace p2pd::cli {

class ControlClient {
 public:
  explicit ControlClient(const GlobalOptions& options);

  Result<proto::StatusReply> status();

 private:
  // Maps a failed call to a clear message; probes the socket for the cause.
  Error explain(const grpc::Status& status) const;
  std::unique_ptr<grpc::ClientContext> make_context() const;

  GlobalOptions m_options;
  std::unique_ptr<proto::Control::Stub> m_stub;
};

}  // namespace p2pd::cli
