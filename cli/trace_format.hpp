#pragma once
// `p2pctl trace` output (CONTRACT.md, "Traces"): a merged trace, events in
// Lamport order, as text for a terminal, JSON for scripts, a ShiViz log, or
// Chrome trace-event JSON for Perfetto.
//
// Vector clocks: every event gets one rebuilt from the trace itself (each
// host counts its own events 1, 2, 3, ...; a receive merges the clock of
// the send that its message id names), which is exactly what ShiViz checks,
// and holds for the whole pool's trace, where only a job's events carry a
// vector clock on the wire. A job's events also show the clock they carried
// (job_vc in JSON).

#include <map>
#include <string>
#include <vector>

#include "cli/command_support.hpp"
#include "common/clocks.hpp"
#include "daemon/trace/recorder.hpp"

namespace p2pd::cli {

struct MergedEvent {
  trace::TraceEvent event;
  clocks::VectorClock vc;  // rebuilt from the trace
};

// Rebuilds clocks for events given in Lamport order (as p2pd sends them),
// batch after batch (--follow).
class TraceMerger {
 public:
  std::vector<MergedEvent> add(std::vector<trace::TraceEvent> events);

 private:
  std::map<std::string, clocks::VectorClock> m_host_clock;
  std::map<std::string, clocks::VectorClock> m_sent;  // msg id -> the send's rebuilt clock
};

std::string format_text(const std::vector<MergedEvent>& events);
Json format_json(const std::vector<MergedEvent>& events);
Json event_json(const MergedEvent& e);
std::string format_shiviz(const std::vector<MergedEvent>& events);
Json format_chrome(const std::vector<MergedEvent>& events);

}  // namespace p2pd::cli
