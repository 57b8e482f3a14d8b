// p2pctl trace (CONTRACT.md, "Traces"): the pool's causal trace, gathered by
// the local p2pd from every reachable peer, printed in Lamport order.
#include "cli/commands_trace.hpp"

#include <csignal>
#include <cstdio>
#include <thread>

#include <fmt/format.h>

#include "cli/command_support.hpp"
#include "cli/control_client.hpp"
#include "cli/trace_format.hpp"
#include "daemon/trace/event_record.hpp"

namespace p2pd::cli {
namespace {

volatile std::sig_atomic_t g_stop_following = 0;

void stop_following(int /*signal*/) {
  g_stop_following = 1;
}

// The reply's events, validated like any input; the cursors moved past them.
std::vector<trace::TraceEvent> events_of(const proto::TraceReply& reply, std::map<std::string, std::uint64_t>& after) {
  std::vector<trace::TraceEvent> events;
  for (const auto& record : reply.events()) {
    auto event = trace::from_record(record);
    if (!event) continue;
    auto& cursor = after[event->host];
    cursor = std::max(cursor, event->seq);
    events.push_back(std::move(*event));
  }
  return events;
}

void warn_unreachable(const proto::TraceReply& reply) {
  if (reply.unreachable_size() > 0) {
    std::string hosts;
    for (const auto& host : reply.unreachable()) hosts += (hosts.empty() ? "" : ", ") + host.substr(0, 12);
    fmt::print(stderr, "p2pctl: warning: no events from {} unreachable peer(s): {}\n", reply.unreachable_size(), hosts);
  }
  if (reply.truncated()) fmt::print(stderr, "p2pctl: warning: only the newest events of some peers are shown\n");
}

}  // namespace

int cmd_trace(const CliArgs& args) {
  auto parsed =
      parse_arguments({.command = "trace", .value_options = {"--job", "--format"}, .flag_options = {"--follow"}}, args);
  if (!parsed) return 2;
  const std::string* format_option = parsed->option("--format");
  const std::string format = format_option != nullptr ? *format_option : (args.global.json ? "json" : "text");
  if (format != "text" && format != "json" && format != "shiviz" && format != "chrome") {
    return usage_error(fmt::format("trace: unknown format '{}' (text, shiviz, chrome or json)", format));
  }
  const bool follow = parsed->flag("--follow");
  if (follow && (format == "shiviz" || format == "chrome")) {
    return usage_error("trace: --follow prints text or json (one event per line), not " + format);
  }
  const std::string* job = parsed->option("--job");
  ControlClient client(args.global);
  std::map<std::string, std::uint64_t> after;
  auto reply = client.trace(job != nullptr ? *job : "", after);
  if (!reply) return fail(reply.error());
  warn_unreachable(*reply);
  const std::string job_id = reply->job_id();
  TraceMerger merger;
  auto merged = merger.add(events_of(*reply, after));
  if (!follow) {
    if (format == "text") {
      std::fputs(format_text(merged).c_str(), stdout);
    } else if (format == "shiviz") {
      std::fputs(format_shiviz(merged).c_str(), stdout);
    } else if (format == "chrome") {
      print_json(format_chrome(merged));
    } else {
      print_json(format_json(merged));
    }
    return 0;
  }
  // --follow: new events as they are recorded, until SIGINT or SIGTERM.
  std::signal(SIGINT, stop_following);
  std::signal(SIGTERM, stop_following);
  for (;;) {
    for (const auto& m : merged) {
      if (format == "text") {
        std::fputs(format_text({m}).c_str(), stdout);
      } else {
        std::fputs((event_json(m).dump(-1, ' ', false, Json::error_handler_t::replace) + "\n").c_str(), stdout);
      }
    }
    std::fflush(stdout);
    for (int i = 0; i < 10 && g_stop_following == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (g_stop_following != 0) return 0;
    auto next = client.trace(job_id, after);
    if (!next) return fail(next.error());
    merged = merger.add(events_of(*next, after));
  }
}

}  // namespace p2pd::cli
