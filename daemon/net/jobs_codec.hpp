#pragma once
// The Blobs and Jobs peer messages (proto/peer.proto), decoded and checked
// before the node sees them: ids of the right length, bounded strings and
// blobs, numbers in range. What fails is refused with INVALID_ARGUMENT and
// the reason, and never reaches the node.

#include <cstdint>
#include <optional>
#include <string>

#include "common/node_id.hpp"
#include "common/result.hpp"

namespace p2pd::proto {
class BlobPut;
class JobProposal;
class WorkerHeartbeat;
class ShardReport;
}  // namespace p2pd::proto

namespace p2pd::net {

// A blob is at most this large (store::kMaxBlobBytes).
inline constexpr std::size_t kMaxBlobMessageBytes = std::size_t{2} << 20;
// A proposed job command: a submit is a few hundred bytes.
inline constexpr std::size_t kMaxProposalBytes = 64 << 10;
inline constexpr std::uint32_t kMaxWorkerSlots = 64;
inline constexpr std::size_t kMaxShardErrorBytes = 512;

struct BlobPutIn {
  std::string id;  // 32 bytes
  std::string data;
};

struct JobProposalIn {
  NodeId from;
  std::string command;
};

struct WorkerHeartbeatIn {
  NodeId node_id;
  std::string executor;  // "cuda" | "cpu"
  std::uint64_t memory_bytes = 0;
  double gflops = 0;
  std::uint32_t slots = 1;
};

struct ShardReportIn {
  NodeId node_id;
  std::string job_id;  // 32 lowercase hex digits
  std::uint32_t index = 0;
  std::string output_ref;  // 64 lowercase hex digits, or empty with error set
  std::string error;
};

Result<BlobPutIn> decode_blob_put(const proto::BlobPut& message);
Result<std::string> decode_blob_id(const std::string& id);
Result<JobProposalIn> decode_job_proposal(const proto::JobProposal& message);
Result<WorkerHeartbeatIn> decode_worker_heartbeat(const proto::WorkerHeartbeat& message);
Result<ShardReportIn> decode_shard_report(const proto::ShardReport& message);

}  // namespace p2pd::net
