#include "daemon/net/jobs_codec.hpp"

#include <cmath>
#include <span>

#include "common/hex.hpp"
#include "common/one_line.hpp"
#include "proto/peer.pb.h"

namespace p2pd::net {
namespace {

Result<NodeId> node_id_from(const std::string& bytes, std::string_view what) {
  auto id = NodeId::from_bytes(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  if (!id) return make_error(ErrorCode::invalid_argument, "{} must be {} bytes", what, NodeId::kBytes);
  return *id;
}

bool is_lower_hex(std::string_view text, std::size_t digits) {
  if (text.size() != digits) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

Result<std::string> decode_blob_id(const std::string& id) {
  if (id.size() != 32) return make_error(ErrorCode::invalid_argument, "a blob id must be 32 bytes");
  return id;
}

Result<BlobPutIn> decode_blob_put(const proto::BlobPut& message) {
  auto id = decode_blob_id(message.id());
  if (!id) return id.error();
  if (message.data().size() > kMaxBlobMessageBytes) {
    return make_error(ErrorCode::invalid_argument, "a blob of {} bytes is over the limit of {}", message.data().size(),
                      kMaxBlobMessageBytes);
  }
  return BlobPutIn{std::move(*id), message.data()};
}

Result<JobProposalIn> decode_job_proposal(const proto::JobProposal& message) {
  auto from = node_id_from(message.from_id(), "from_id");
  if (!from) return from.error();
  if (message.command().empty() || message.command().size() > kMaxProposalBytes) {
    return make_error(ErrorCode::invalid_argument, "a proposed command must be 1 to {} bytes", kMaxProposalBytes);
  }
  return JobProposalIn{*from, message.command()};
}

Result<WorkerHeartbeatIn> decode_worker_heartbeat(const proto::WorkerHeartbeat& message) {
  auto id = node_id_from(message.node_id(), "node_id");
  if (!id) return id.error();
  if (message.executor() != "cuda" && message.executor() != "cpu") {
    return make_error(ErrorCode::invalid_argument, "executor must be cuda or cpu");
  }
  // A claimed speed decides who gets work first: bound it to what one
  // machine can do today (an exaflop is far beyond any single node).
  if (!std::isfinite(message.gflops()) || message.gflops() < 0 || message.gflops() > 1e6) {
    return make_error(ErrorCode::invalid_argument, "gflops must be between 0 and 1e6");
  }
  if (message.slots() == 0 || message.slots() > kMaxWorkerSlots) {
    return make_error(ErrorCode::invalid_argument, "slots must be 1 to {}", kMaxWorkerSlots);
  }
  return WorkerHeartbeatIn{*id, message.executor(), message.memory_bytes(), message.gflops(), message.slots()};
}

Result<ShardReportIn> decode_shard_report(const proto::ShardReport& message) {
  auto id = node_id_from(message.node_id(), "node_id");
  if (!id) return id.error();
  if (!is_lower_hex(message.job_id(), 32)) {
    return make_error(ErrorCode::invalid_argument, "job_id must be 32 lowercase hex digits");
  }
  if (message.error().empty() == message.output_ref().empty()) {
    return make_error(ErrorCode::invalid_argument, "a shard report has either an output_ref or an error");
  }
  if (!message.output_ref().empty() && !is_lower_hex(message.output_ref(), 64)) {
    return make_error(ErrorCode::invalid_argument, "output_ref must be 64 lowercase hex digits");
  }
  if (message.error().size() > 4 * kMaxShardErrorBytes) {
    return make_error(ErrorCode::invalid_argument, "a shard error is over {} bytes", 4 * kMaxShardErrorBytes);
  }
  return ShardReportIn{*id, message.job_id(), message.index(), message.output_ref(), one_line(message.error())};
}

}  // namespace p2pd::net
