// Fuzz target: what peers send (daemon/net codecs and the trace context in
// every message's metadata). The first byte picks the message; the rest is
// its protobuf encoding, parsed as gRPC would, then validated and decoded
// as the peer server does. Nothing may crash, and whatever is accepted
// must be within the bounds the decoders promise.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/net/chord_codec.hpp"
#include "daemon/net/jobs_codec.hpp"
#include "daemon/net/raft_codec.hpp"
#include "daemon/trace/event_record.hpp"
#include "daemon/trace/tracer.hpp"
#include "proto/trace.pb.h"
#include "tests/fuzz/fuzz_target.hpp"

#include <google/protobuf/stubs/logging.h>

namespace {

template <class Message>
bool parse(Message& message, std::string_view bytes) {
  return message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // libprotobuf logs every string field that is not UTF-8: millions of
  // lines, and most of the fuzzer's time.
  [[maybe_unused]] static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  using namespace p2pd;
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 9) {
    case 0: {
      proto::ChordRequest request;
      if (parse(request, bytes)) {
        if (auto in = net::decode_request(request)) FUZZ_CHECK(!in->from.addr.empty());
      }
      break;
    }
    case 1: {
      proto::ChordReply reply;
      if (parse(reply, bytes)) (void)net::decode_reply(reply, 1);
      break;
    }
    case 2: {
      proto::RaftMessage message;
      if (parse(message, bytes)) (void)net::decode_raft(message, NodeId{});
      break;
    }
    case 3: {
      proto::BlobPut put;
      if (parse(put, bytes)) (void)net::decode_blob_put(put);
      break;
    }
    case 4: {
      proto::JobProposal proposal;
      if (parse(proposal, bytes)) (void)net::decode_job_proposal(proposal);
      break;
    }
    case 5: {
      proto::WorkerHeartbeat heartbeat;
      if (parse(heartbeat, bytes)) (void)net::decode_worker_heartbeat(heartbeat);
      break;
    }
    case 6: {
      proto::ShardReport report;
      if (parse(report, bytes)) (void)net::decode_shard_report(report);
      break;
    }
    case 7: (void)net::decode_blob_id(std::string(bytes)); break;
    case 8: {
      // A trace context: accepted only if what it would put in this node's
      // trace (ids, clock keys) is what a trace record may hold.
      trace::Tracer tracer("fuzz-host", nullptr, [] { return std::uint64_t{1'700'000'000'000}; });
      tracer.on_receive(bytes, "fuzz");
      trace::TraceContext context;
      if (tracer.bad_contexts() == 0 && parse(context, bytes)) {
        FUZZ_CHECK(trace::is_id(context.msg_id()) && trace::is_id(context.job_id()));
        for (const auto& entry : context.vc()) FUZZ_CHECK(trace::is_id(entry.node()));
      }
      break;
    }
  }
  return 0;
}
