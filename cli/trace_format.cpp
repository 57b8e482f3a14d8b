#include "cli/trace_format.hpp"

#include <fmt/format.h>

#include <map>
#include <set>

namespace p2pd::cli {
namespace {

std::string short_host(const std::string& host) {
  return host.substr(0, 12);
}

Json clock_json(const clocks::VectorClock& vc, bool short_names) {
  Json j = Json::object();
  for (const auto& [node, value] : vc.entries()) j[short_names ? short_host(node) : node] = value;
  return j;
}

// One line: a description must not break ShiViz's two-line events.
std::string one_line_of(const std::string& text) {
  std::string out;
  for (char c : text) out.push_back(c == '\n' || c == '\r' ? ' ' : c);
  return out;
}

}  // namespace

std::vector<MergedEvent> TraceMerger::add(std::vector<trace::TraceEvent> events) {
  std::vector<MergedEvent> merged;
  merged.reserve(events.size());
  for (auto& e : events) {
    auto& vc = m_host_clock[e.host];
    if (e.kind == trace::EventKind::receive) {
      // Lamport order puts a send before its receive (L(send) < L(recv)).
      if (auto it = m_sent.find(e.msg_id); it != m_sent.end()) vc.merge(it->second);
    }
    vc.tick(e.host);
    if (e.kind == trace::EventKind::send && !e.msg_id.empty()) m_sent[e.msg_id] = vc;
    merged.push_back(MergedEvent{std::move(e), vc});
  }
  return merged;
}

std::string format_text(const std::vector<MergedEvent>& events) {
  std::string out;
  for (const auto& m : events) {
    const auto& e = m.event;
    const std::uint64_t ms = e.hlc.l;
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    std::string clock;
    for (const auto& [node, value] : m.vc.entries()) {
      clock += fmt::format("{}{}:{}", clock.empty() ? "" : " ", node.substr(0, 8), value);
    }
    out += fmt::format("{:02}:{:02}:{:02}.{:03}  {}  L{:<6} {:<5} {}{}  [{}]\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
                       ms % 1000, short_host(e.host), e.lamport, trace::to_string(e.kind), one_line_of(e.what),
                       e.msg_id.empty() ? "" : fmt::format(" (msg {})", e.msg_id), clock);
  }
  return out;
}

Json event_json(const MergedEvent& m) {
  const auto& e = m.event;
  Json j{{"host", e.host},
         {"lamport", e.lamport},
         {"vc", clock_json(m.vc, false)},
         {"kind", std::string(trace::to_string(e.kind))},
         {"what", e.what},
         {"seq", e.seq},
         {"hlc", Json{{"l", e.hlc.l}, {"c", e.hlc.c}}},
         {"wall_ms", e.wall_ms}};
  if (!e.msg_id.empty()) j["msg_id"] = e.msg_id;
  if (!e.job_id.empty()) {
    j["job_id"] = e.job_id;
    j["job_vc"] = clock_json(e.vc, false);
  }
  return j;
}

Json format_json(const std::vector<MergedEvent>& events) {
  Json list = Json::array();
  for (const auto& m : events) list.push_back(event_json(m));
  return Json{{"events", list}};
}

// ShiViz's default parser: `(?<event>.*)\n(?<host>\S*) (?<clock>{.*})`.
std::string format_shiviz(const std::vector<MergedEvent>& events) {
  std::string out;
  for (const auto& m : events) {
    const auto& e = m.event;
    std::string what = fmt::format("{} {}", trace::to_string(e.kind), one_line_of(e.what));
    if (!e.msg_id.empty()) what += fmt::format(" msg={}", e.msg_id);
    if (!e.job_id.empty()) what += fmt::format(" job={}", e.job_id.substr(0, 12));
    out += what + "\n" + short_host(e.host) + " " +
           clock_json(m.vc, true).dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  }
  return out;
}

Json format_chrome(const std::vector<MergedEvent>& events) {
  Json list = Json::array();
  std::map<std::string, int> pid_of;
  for (const auto& m : events) {
    if (pid_of.contains(m.event.host)) continue;
    const int pid = static_cast<int>(pid_of.size()) + 1;
    pid_of[m.event.host] = pid;
    list.push_back(Json{{"ph", "M"},
                        {"name", "process_name"},
                        {"pid", pid},
                        {"tid", 0},
                        {"args", Json{{"name", "p2pd " + short_host(m.event.host)}}}});
  }
  // Time is the HLC: it respects causality, so every flow arrow points forward.
  auto ts_of = [](const trace::TraceEvent& e) { return static_cast<double>(e.hlc.l) * 1000.0 + e.hlc.c; };
  // One flow per send-receive pair: a command applied on every node is one
  // send with several receives, and a flow has one start and one end.
  std::map<std::string, std::pair<int, double>> sends;  // msg id -> pid, ts
  int flows = 0;
  for (const auto& m : events) {
    const auto& e = m.event;
    const int pid = pid_of[e.host];
    Json args{{"lamport", e.lamport}, {"vc", clock_json(m.vc, true)}};
    if (!e.msg_id.empty()) args["msg_id"] = e.msg_id;
    if (!e.job_id.empty()) args["job_id"] = e.job_id;
    list.push_back(Json{{"ph", "X"},
                        {"name", one_line_of(e.what)},
                        {"cat", std::string(trace::to_string(e.kind))},
                        {"ts", ts_of(e)},
                        {"dur", 1},
                        {"pid", pid},
                        {"tid", 0},
                        {"args", args}});
    if (e.msg_id.empty()) continue;
    if (e.kind == trace::EventKind::send) {
      sends[e.msg_id] = {pid, ts_of(e)};
    } else if (e.kind == trace::EventKind::receive) {
      if (auto it = sends.find(e.msg_id); it != sends.end()) {
        const int id = ++flows;
        list.push_back(Json{{"ph", "s"},
                            {"name", "message"},
                            {"cat", "message"},
                            {"id", id},
                            {"ts", it->second.second},
                            {"pid", it->second.first},
                            {"tid", 0}});
        list.push_back(Json{{"ph", "f"},
                            {"bp", "e"},
                            {"name", "message"},
                            {"cat", "message"},
                            {"id", id},
                            {"ts", ts_of(e)},
                            {"pid", pid},
                            {"tid", 0}});
      }
    }
  }
  return Json{{"traceEvents", list}, {"displayTimeUnit", "ms"}};
}

}  // namespace p2pd::cli
