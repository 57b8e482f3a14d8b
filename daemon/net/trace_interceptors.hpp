#pragma once
// The clocks on every peer message (DESIGN.md, "Causal traces"), added and
// read in one place for every service: a client interceptor stamps each
// outgoing call with this node's Lamport clock and HLC (unless the caller
// stamped it already, for a send it names), and a server interceptor feeds
// each incoming call's stamp to this node's clocks.

#include <grpcpp/support/client_interceptor.h>
#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "daemon/trace/tracer.hpp"

namespace p2pd::net {

std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface> make_trace_stamper(trace::Tracer& tracer);
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> make_trace_reader(trace::Tracer& tracer);

}  // namespace p2pd::net
