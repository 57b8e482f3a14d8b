#pragma once
// One RPC to the local p2pd, with the global timeout, and every gRPC failure
// turned into one line a user can act on.

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "cli/cli_args.hpp"
#include "common/result.hpp"
#include "proto/control.grpc.pb.h"

namespace p2pd::cli {

class ControlClient {
 public:
  explicit ControlClient(const GlobalOptions& options);

  Result<proto::StatusReply> status();
  Result<proto::RingReply> ring();
  // `key`: exactly 40 hex digits is the id itself; anything else is hashed by p2pd.
  Result<proto::LookupReply> lookup(const std::string& key);
  Result<proto::PeersReply> peers();
  Result<proto::PutReply> put(const std::string& key, const std::string& value);
  // A missing key is ErrorCode::not_found.
  Result<proto::GetReply> get(const std::string& key);
  // p2pd answers once it handed its keys over, then exits.
  Result<proto::LeaveReply> leave();
  Result<proto::LeaderReply> leader();
  Result<proto::NetcheckReply> netcheck();
  // Waits up to `extra` beyond --timeout: an attempt takes its time.
  Result<proto::PunchReply> punch(const std::string& peer, std::chrono::milliseconds extra);
  Result<proto::JobsReply> jobs();
  // `id`: a job id or a unique prefix of it.
  Result<proto::JobReply> job(const std::string& id);
  // Long poll: answered once the job's state or done shards differ from
  // these, or after `wait` (which must be shorter than --timeout).
  Result<proto::JobReply> job_change(const std::string& id, const std::string& known_state,
                                     std::uint32_t known_shards_done, std::chrono::milliseconds wait);
  Result<proto::CancelReply> cancel(const std::string& id);
  Result<proto::TraceReply> trace(const std::string& job_id, const std::map<std::string, std::uint64_t>& after_seq);

  // Submit: the header, then each piece `next` puts in its argument (the
  // same string every time, its memory reused) until it gives false.
  // The call may take `extra` beyond --timeout (large inputs take a while).
  using NextPiece = std::function<Result<bool>(std::string& piece)>;
  Result<proto::SubmitReply> submit(const proto::SubmitHeader& header, const NextPiece& next,
                                    std::chrono::milliseconds extra);
  // Result: `on_header` once, then `on_data` for each piece, in order.
  Result<void> result(const std::string& id, const std::function<Result<void>(const proto::ResultHeader&)>& on_header,
                      const std::function<Result<void>(const std::string&)>& on_data, std::chrono::milliseconds extra);

 private:
  template <class Request, class Reply>
  using StubMethod = grpc::Status (proto::Control::Stub::*)(grpc::ClientContext*, const Request&, Reply*);

  // One unary call with the deadline; a failure comes back explained.
  template <class Request, class Reply>
  Result<Reply> call(StubMethod<Request, Reply> method, const Request& request,
                     std::chrono::milliseconds extra = std::chrono::milliseconds(0));

  // Maps a failed call to a clear message; probes the socket for the cause.
  Error explain(const grpc::Status& status) const;
  std::unique_ptr<grpc::ClientContext> make_context(
      std::chrono::milliseconds extra = std::chrono::milliseconds(0)) const;

  GlobalOptions m_options;
  std::unique_ptr<proto::Control::Stub> m_stub;
};

}  // namespace p2pd::cli
