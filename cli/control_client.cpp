#include "cli/control_client.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include <grpcpp/grpcpp.h>

#include "common/default_paths.hpp"
#include "common/unix_socket.hpp"

namespace p2pd::cli {
namespace {

// Why the socket cannot be used, in the OS's words; empty when it accepts.
std::string probe_socket(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return fmt::format("no p2pd control socket at {} (is p2pd running? see --socket)", path.string());
    return fmt::format("cannot access {}: {}", path.string(), std::strerror(errno));
  }
  if (!S_ISSOCK(st.st_mode)) return fmt::format("{} is not a socket", path.string());
  const int err = probe_unix_socket(path);
  if (err == 0) return {};
  if (err == EACCES || err == EPERM) {
    return fmt::format("permission denied on {} (only its owner and group may use it)", path.string());
  }
  if (err == ECONNREFUSED) return fmt::format("p2pd is not running (nothing listens on {})", path.string());
  return fmt::format("cannot connect to {}: {}", path.string(), std::strerror(err));
}

// Without XDG_RUNTIME_DIR the default socket lives in /tmp/p2pd-UID, a name
// any local user could create first and serve a fake daemon from.
Result<void> check_fallback_dir(const std::filesystem::path& socket) {
  if (socket != default_client_socket() || !socket.string().starts_with("/tmp/")) return {};
  struct stat st {};
  const auto dir = socket.parent_path();
  if (::stat(dir.c_str(), &st) != 0) return {};  // absent: the call will say no daemon runs
  if (st.st_uid != ::geteuid()) {
    return make_error(ErrorCode::permission_denied,
                      "{} belongs to uid {}, not to you; refusing to talk to a daemon there (set --socket)",
                      dir.string(), st.st_uid);
  }
  return {};
}

}  // namespace

ControlClient::ControlClient(const GlobalOptions& options) : m_options(options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel("unix:" + options.socket.string(), grpc::InsecureChannelCredentials(), args);
  m_stub = proto::Control::NewStub(channel);
}

std::unique_ptr<grpc::ClientContext> ControlClient::make_context(std::chrono::milliseconds extra) const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + m_options.timeout + extra);
  return context;
}

Error ControlClient::explain(const grpc::Status& status) const {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE: {
      std::string cause = probe_socket(m_options.socket);
      if (cause.empty())
        cause = fmt::format("p2pd at {} is unavailable: {}", m_options.socket.string(), status.error_message());
      return Error{ErrorCode::unavailable, cause};
    }
    case grpc::StatusCode::DEADLINE_EXCEEDED: {
      std::string cause = probe_socket(m_options.socket);
      if (!cause.empty()) return Error{ErrorCode::unavailable, cause};
      return make_error(ErrorCode::timed_out, "p2pd did not answer within {:g} s (see --timeout)",
                        static_cast<double>(m_options.timeout.count()) / 1000.0);
    }
    case grpc::StatusCode::INVALID_ARGUMENT: return Error{ErrorCode::invalid_argument, status.error_message()};
    case grpc::StatusCode::NOT_FOUND: return Error{ErrorCode::not_found, status.error_message()};
    case grpc::StatusCode::PERMISSION_DENIED: return Error{ErrorCode::permission_denied, status.error_message()};
    case grpc::StatusCode::UNIMPLEMENTED:
      return make_error(ErrorCode::unavailable, "this p2pd does not support the request (is it older than p2pctl?)");
    default: return make_error(ErrorCode::internal, "p2pd: {}", status.error_message());
  }
}

template <class Request, class Reply>
Result<Reply> ControlClient::call(StubMethod<Request, Reply> method, const Request& request,
                                  std::chrono::milliseconds extra) {
  if (auto trusted = check_fallback_dir(m_options.socket); !trusted) return trusted.error();
  auto context = make_context(extra);
  Reply reply;
  grpc::Status rpc = (m_stub.get()->*method)(context.get(), request, &reply);
  if (!rpc.ok()) return explain(rpc);
  return reply;
}

Result<proto::StatusReply> ControlClient::status() {
  return call(&proto::Control::Stub::Status, proto::StatusRequest{});
}

Result<proto::LeaderReply> ControlClient::leader() {
  return call(&proto::Control::Stub::Leader, proto::LeaderRequest{});
}

Result<proto::NetcheckReply> ControlClient::netcheck() {
  return call(&proto::Control::Stub::Netcheck, proto::NetcheckRequest{});
}

Result<proto::PunchReply> ControlClient::punch(const std::string& peer, std::chrono::milliseconds extra) {
  proto::PunchRequest request;
  request.set_peer(peer);
  return call(&proto::Control::Stub::Punch, request, extra);
}

Result<proto::RingReply> ControlClient::ring() {
  return call(&proto::Control::Stub::Ring, proto::RingRequest{});
}

Result<proto::LookupReply> ControlClient::lookup(const std::string& key) {
  proto::LookupRequest request;
  request.set_key(key);
  return call(&proto::Control::Stub::Lookup, request);
}

Result<proto::PeersReply> ControlClient::peers() {
  return call(&proto::Control::Stub::Peers, proto::PeersRequest{});
}

Result<proto::PutReply> ControlClient::put(const std::string& key, const std::string& value) {
  proto::PutRequest request;
  request.set_key(key);
  request.set_value(value);
  return call(&proto::Control::Stub::Put, request);
}

Result<proto::GetReply> ControlClient::get(const std::string& key) {
  proto::GetRequest request;
  request.set_key(key);
  return call(&proto::Control::Stub::Get, request);
}

Result<proto::LeaveReply> ControlClient::leave() {
  return call(&proto::Control::Stub::Leave, proto::LeaveRequest{});
}

}  // namespace p2pd::cli

namespace p2pd::cli {

Result<proto::JobsReply> ControlClient::jobs() {
  return call(&proto::Control::Stub::Jobs, proto::JobsRequest{});
}

Result<proto::JobReply> ControlClient::job(const std::string& id) {
  proto::JobRequest request;
  request.set_job_id(id);
  return call(&proto::Control::Stub::Job, request);
}

Result<proto::JobReply> ControlClient::job_change(const std::string& id, const std::string& known_state,
                                                  std::uint32_t known_shards_done, std::chrono::milliseconds wait) {
  proto::JobRequest request;
  request.set_job_id(id);
  request.set_wait_ms(static_cast<std::uint32_t>(wait.count()));
  request.set_known_state(known_state);
  request.set_known_shards_done(known_shards_done);
  return call(&proto::Control::Stub::Job, request);
}

Result<proto::TraceReply> ControlClient::trace(const std::string& job_id,
                                               const std::map<std::string, std::uint64_t>& after_seq) {
  proto::TraceRequest request;
  request.set_job_id(job_id);
  for (const auto& [host, seq] : after_seq) (*request.mutable_after_seq())[host] = seq;
  return call(&proto::Control::Stub::Trace, request);
}

Result<proto::CancelReply> ControlClient::cancel(const std::string& id) {
  proto::CancelRequest request;
  request.set_job_id(id);
  return call(&proto::Control::Stub::Cancel, request);
}

Result<proto::SubmitReply> ControlClient::submit(const proto::SubmitHeader& header, const NextPiece& next,
                                                 std::chrono::milliseconds extra) {
  if (auto trusted = check_fallback_dir(m_options.socket); !trusted) return trusted.error();
  auto context = make_context();
  context->set_deadline(std::chrono::system_clock::now() + m_options.timeout + extra);
  proto::SubmitReply reply;
  auto writer = m_stub->Submit(context.get(), &reply);
  proto::SubmitMessage message;
  *message.mutable_header() = header;
  bool open = writer->Write(message);
  std::optional<Error> local_error;
  while (open) {
    auto more = next(*message.mutable_data());
    if (!more) {
      local_error = more.error();
      context->TryCancel();
      break;
    }
    if (!*more) break;
    open = writer->Write(message);
  }
  if (open && !local_error) writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (local_error) return *local_error;
  if (!status.ok()) return explain(status);
  return reply;
}

Result<void> ControlClient::result(const std::string& id,
                                   const std::function<Result<void>(const proto::ResultHeader&)>& on_header,
                                   const std::function<Result<void>(const std::string&)>& on_data,
                                   std::chrono::milliseconds extra) {
  if (auto trusted = check_fallback_dir(m_options.socket); !trusted) return trusted.error();
  auto context = make_context();
  context->set_deadline(std::chrono::system_clock::now() + m_options.timeout + extra);
  proto::ResultRequest request;
  request.set_job_id(id);
  auto reader = m_stub->Result(context.get(), request);
  proto::ResultMessage message;
  bool have_header = false;
  std::optional<Error> local_error;
  while (reader->Read(&message)) {
    Result<void> taken;
    if (!have_header) {
      if (!message.has_header()) {
        taken = make_error(ErrorCode::corrupt, "p2pd sent data before the result's header");
      } else {
        have_header = true;
        taken = on_header(message.header());
      }
    } else if (message.body_case() != proto::ResultMessage::kData) {
      taken = make_error(ErrorCode::corrupt, "p2pd sent a second header");
    } else {
      taken = on_data(message.data());
    }
    if (!taken) {
      local_error = taken.error();
      context->TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (local_error) return *local_error;
  if (!status.ok()) return explain(status);
  if (!have_header) return make_error(ErrorCode::corrupt, "p2pd ended the result without a header");
  return {};
}

}  // namespace p2pd::cli
