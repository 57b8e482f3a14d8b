#pragma once
// A trace event to and from its wire and disk form (proto/trace.proto),
// validated on the way in: a record may come from a damaged file or a peer.

#include <optional>
#include <string_view>

#include "daemon/trace/recorder.hpp"
#include "proto/trace.pb.h"

namespace p2pd::trace {

// Bounds on what a record read back may hold.
inline constexpr std::size_t kMaxTraceIdBytes = 128;

// Ids (hosts, message and job ids, clock keys) are printable ASCII: they
// are printed, cut short for display, and written into JSON and ShiViz.
bool is_id(std::string_view text);

void to_record(const TraceEvent& event, TraceEventRecord& record);
// nullopt when the record breaks a bound (a damaged file, a bad peer).
std::optional<TraceEvent> from_record(const TraceEventRecord& record);

}  // namespace p2pd::trace
