// Fuzz target: the trace merger. Peers answer a trace query with records
// (proto TraceEvents); the node validates each (trace::from_record), orders
// them as node_trace.cpp does, and p2pctl rebuilds vector clocks and prints
// them in all four formats. None of it may crash on what a peer sends, and
// every event keeps a clock that counts its own host.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cli/trace_format.hpp"
#include "daemon/trace/event_record.hpp"
#include "proto/peer.pb.h"
#include "tests/fuzz/fuzz_target.hpp"

#include <google/protobuf/stubs/logging.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // libprotobuf logs every string field that is not UTF-8: millions of
  // lines, and most of the fuzzer's time.
  [[maybe_unused]] static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  using namespace p2pd;
  proto::TraceEvents reply;
  if (!reply.ParseFromArray(data, static_cast<int>(size))) return 0;
  std::vector<trace::TraceEvent> events;
  for (const auto& record : reply.events()) {
    if (auto event = trace::from_record(record)) events.push_back(std::move(*event));
  }
  trace::sort_in_lamport_order(events);
  cli::TraceMerger merger;
  // In two batches, as p2pctl trace --follow gets them.
  std::vector<trace::TraceEvent> second(events.begin() + static_cast<std::ptrdiff_t>(events.size() / 2), events.end());
  events.resize(events.size() / 2);
  auto merged = merger.add(std::move(events));
  auto more = merger.add(std::move(second));
  merged.insert(merged.end(), more.begin(), more.end());
  for (const auto& m : merged) FUZZ_CHECK(m.vc.get(m.event.host) >= 1);
  (void)cli::format_text(merged);
  (void)cli::format_json(merged).dump();
  (void)cli::format_shiviz(merged);
  (void)cli::format_chrome(merged).dump();
  return 0;
}
