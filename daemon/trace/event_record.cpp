#include "daemon/trace/event_record.hpp"

#include <algorithm>
#include <string_view>

#include "common/one_line.hpp"

namespace p2pd::trace {

bool is_id(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

void to_record(const TraceEvent& e, TraceEventRecord& record) {
  record.set_seq(e.seq);
  record.set_host(e.host);
  record.set_lamport(e.lamport);
  record.set_hlc_l(e.hlc.l);
  record.set_hlc_c(e.hlc.c);
  for (const auto& [node, value] : e.vc.entries()) {
    auto* entry = record.add_vc();
    entry->set_node(node);
    entry->set_value(value);
  }
  record.set_kind(static_cast<std::uint32_t>(e.kind));
  record.set_msg_id(e.msg_id);
  record.set_job_id(e.job_id);
  record.set_what(e.what);
  record.set_wall_ms(e.wall_ms);
}

std::optional<TraceEvent> from_record(const TraceEventRecord& record) {
  if (record.kind() > 2 || record.host().empty() || record.host().size() > kMaxTraceIdBytes ||
      record.msg_id().size() > kMaxTraceIdBytes || record.job_id().size() > kMaxTraceIdBytes ||
      record.what().size() > kMaxWhatBytes ||
      static_cast<std::size_t>(record.vc_size()) > clocks::VectorClock::kMaxEntries || !is_id(record.host()) ||
      !is_id(record.msg_id()) || !is_id(record.job_id()) || !is_valid_utf8(record.what())) {
    return std::nullopt;
  }
  TraceEvent e;
  e.seq = record.seq();
  e.host = record.host();
  e.lamport = record.lamport();
  e.hlc = {record.hlc_l(), record.hlc_c()};
  for (const auto& entry : record.vc()) {
    if (entry.node().empty() || entry.node().size() > kMaxTraceIdBytes || !is_id(entry.node())) return std::nullopt;
    e.vc.set(entry.node(), entry.value());
  }
  e.kind = static_cast<EventKind>(record.kind());
  e.msg_id = record.msg_id();
  e.job_id = record.job_id();
  e.what = record.what();
  e.wall_ms = record.wall_ms();
  return e;
}

}  // namespace p2pd::trace
