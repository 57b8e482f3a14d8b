#pragma once
// The two streaming control calls: a job's inputs in (Submit) and its output
// out (Result). Flow control is end to end: the next message is read (or
// written) only once the node has taken the last one, so neither side ever
// holds more than a few chunks.

#include <string>

#include <grpcpp/grpcpp.h>

#include "daemon/control/control_handler.hpp"
#include "proto/control.grpc.pb.h"

namespace p2pd::control {

// `submitter`: the calling user as the kernel named them ("user@host"); what
// the client's header says instead is not taken.
grpc::ServerReadReactor<proto::SubmitMessage>* start_submit(grpc::CallbackServerContext* context,
                                                            ControlHandler& handler, proto::SubmitReply* reply,
                                                            std::string submitter);

grpc::ServerWriteReactor<proto::ResultMessage>* start_result(grpc::CallbackServerContext* context,
                                                             ControlHandler& handler,
                                                             const proto::ResultRequest* request);

// An error as the control service answers it (also used by the unary calls).
grpc::Status to_status(const Error& error);

}  // namespace p2pd::control
