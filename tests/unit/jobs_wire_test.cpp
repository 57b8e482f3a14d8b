// The Blobs and Jobs peer messages are validated before the node sees them
// (daemon/net/jobs_codec): what a peer sends cannot reach the scheduler or
// the store malformed.
#include <catch2/catch.hpp>

#include <limits>

#include "daemon/net/jobs_codec.hpp"
#include "proto/peer.pb.h"

using namespace p2pd;
using namespace p2pd::net;

namespace {

std::string id_bytes(char fill = 'x') {
  return std::string(NodeId::kBytes, fill);
}

proto::WorkerHeartbeat good_heartbeat() {
  proto::WorkerHeartbeat h;
  h.set_node_id(id_bytes());
  h.set_executor("cpu");
  h.set_memory_bytes(1 << 30);
  h.set_gflops(100);
  h.set_slots(1);
  return h;
}

proto::ShardReport good_report() {
  proto::ShardReport r;
  r.set_node_id(id_bytes());
  r.set_job_id(std::string(32, 'a'));
  r.set_index(3);
  r.set_output_ref(std::string(64, 'b'));
  return r;
}

}  // namespace

TEST_CASE("a heartbeat is checked: id, executor, speed, slots", "[unit][net][jobs]") {
  auto decoded = decode_worker_heartbeat(good_heartbeat());
  REQUIRE(decoded);
  CHECK(decoded->executor == "cpu");
  CHECK(decoded->slots == 1);

  auto h = good_heartbeat();
  h.set_node_id("short");
  CHECK_FALSE(decode_worker_heartbeat(h));
  h = good_heartbeat();
  h.set_executor("tpu");
  CHECK_FALSE(decode_worker_heartbeat(h));
  for (double bad : {-1.0, 2e6, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    h = good_heartbeat();
    h.set_gflops(bad);
    CHECK_FALSE(decode_worker_heartbeat(h));
  }
  h = good_heartbeat();
  h.set_slots(0);
  CHECK_FALSE(decode_worker_heartbeat(h));
  h.set_slots(kMaxWorkerSlots + 1);
  CHECK_FALSE(decode_worker_heartbeat(h));
}

TEST_CASE("a shard report is checked: ids, an output or an error, bounded text", "[unit][net][jobs]") {
  auto decoded = decode_shard_report(good_report());
  REQUIRE(decoded);
  CHECK(decoded->index == 3);

  auto r = good_report();
  r.set_job_id(std::string(32, 'A'));  // ids are lowercase
  CHECK_FALSE(decode_shard_report(r));
  r = good_report();
  r.set_output_ref(std::string(63, 'b'));
  CHECK_FALSE(decode_shard_report(r));
  r = good_report();
  r.set_error("boom");  // both an output and an error
  CHECK_FALSE(decode_shard_report(r));
  r = good_report();
  r.clear_output_ref();  // neither
  CHECK_FALSE(decode_shard_report(r));
  r.set_error("out of memory\nsecond line");
  auto failed = decode_shard_report(r);
  REQUIRE(failed);
  CHECK(failed->error.find('\n') == std::string::npos);  // one line, always
  r.set_error(std::string(4 * kMaxShardErrorBytes + 1, 'e'));
  CHECK_FALSE(decode_shard_report(r));
}

TEST_CASE("blob and proposal messages are bounded", "[unit][net][jobs]") {
  proto::BlobPut put;
  put.set_id(std::string(32, 'i'));
  put.set_data("data");
  CHECK(decode_blob_put(put));
  put.set_id(std::string(31, 'i'));
  CHECK_FALSE(decode_blob_put(put));
  put.set_id(std::string(32, 'i'));
  put.set_data(std::string(kMaxBlobMessageBytes + 1, 'd'));
  CHECK_FALSE(decode_blob_put(put));

  proto::JobProposal proposal;
  proposal.set_from_id(id_bytes());
  CHECK_FALSE(decode_job_proposal(proposal));  // empty command
  proposal.set_command("cmd");
  CHECK(decode_job_proposal(proposal));
  proposal.set_command(std::string(kMaxProposalBytes + 1, 'c'));
  CHECK_FALSE(decode_job_proposal(proposal));
}
