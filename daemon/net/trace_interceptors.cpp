#include "daemon/net/trace_interceptors.hpp"

#include <string>

namespace p2pd::net {
namespace {

using grpc::experimental::InterceptionHookPoints;

class StampInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit StampInterceptor(trace::Tracer& tracer) : m_tracer(tracer) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      auto* metadata = methods->GetSendInitialMetadata();
      const std::string key(trace::kTraceMetadataKey);
      if (metadata != nullptr && metadata->find(key) == metadata->end()) metadata->emplace(key, m_tracer.on_send());
    }
    methods->Proceed();
  }

 private:
  trace::Tracer& m_tracer;
};

class ReadInterceptor final : public grpc::experimental::Interceptor {
 public:
  ReadInterceptor(trace::Tracer& tracer, std::string method) : m_tracer(tracer), m_method(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      if (auto* metadata = methods->GetRecvInitialMetadata(); metadata != nullptr) {
        // Only the first stamp counts; a peer sending several gets no more.
        auto it = metadata->find(grpc::string_ref(trace::kTraceMetadataKey.data(), trace::kTraceMetadataKey.size()));
        if (it != metadata->end()) m_tracer.on_receive({it->second.data(), it->second.size()}, m_method);
      }
    }
    methods->Proceed();
  }

 private:
  trace::Tracer& m_tracer;
  std::string m_method;
};

class StamperFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit StamperFactory(trace::Tracer& tracer) : m_tracer(tracer) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo* /*info*/) override {
    return new StampInterceptor(m_tracer);
  }

 private:
  trace::Tracer& m_tracer;
};

class ReaderFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit ReaderFactory(trace::Tracer& tracer) : m_tracer(tracer) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    // "/p2pd.proto.Jobs/ReportShard" -> "received Jobs/ReportShard"
    std::string method = info->method() != nullptr ? info->method() : "";
    constexpr std::string_view kPrefix = "/p2pd.proto.";
    if (method.starts_with(kPrefix)) method.erase(0, kPrefix.size());
    return new ReadInterceptor(m_tracer, "received " + method);
  }

 private:
  trace::Tracer& m_tracer;
};

}  // namespace

std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface> make_trace_stamper(trace::Tracer& tracer) {
  return std::make_unique<StamperFactory>(tracer);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> make_trace_reader(trace::Tracer& tracer) {
  return std::make_unique<ReaderFactory>(tracer);
}

}  // namespace p2pd::net
