#include "daemon/trace/event_record.hpp"

#include <algorithm>
#include <string_view>

namespace p2pd::trace {
// Ids (hosts, message and job ids, clock keys) are printable ASCII: they
// are printed, cut short for display, and written into JSON and ShiViz
// logs, where a stray byte would make p2pctl's output invalid.
bool is_id(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// Well-formed UTF-8 (RFC 3629): no stray continuation bytes, no truncated
// or overlong sequences, no surrogates, nothing above U+10FFFF.
bool is_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    std::uint32_t code = 0;
    if (byte < 0x80) {
      ++i;
      continue;
    } else if ((byte & 0xE0) == 0xC0) {
      length = 2;
      code = byte & 0x1F;
    } else if ((byte & 0xF0) == 0xE0) {
      length = 3;
      code = byte & 0x0F;
    } else if ((byte & 0xF8) == 0xF0) {
      length = 4;
      code = byte & 0x07;
    } else {
      return false;
    }
    if (text.size() - i < length) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    static constexpr std::uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < kSmallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += length;
  }
  return true;
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
      !is_id(record.msg_id()) || !is_id(record.job_id()) || !is_utf8(record.what())) {
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
