#include "cli/commands_nat.hpp"

#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/command_support.hpp"
#include "cli/control_client.hpp"
#include "cli/output.hpp"

namespace p2pd::cli {
namespace {

Json netcheck_json(const proto::NetcheckReply& r) {
  Json j;
  j["observed"] = Json::array();
  for (const auto& o : r.observed()) {
    j["observed"].push_back(Json{{"ip", o.ip()}, {"observers", o.observers()}, {"adopted", o.adopted()}});
  }
  j["observers"] = r.observers();
  j["reachability"] = r.reachability();
  j["reachability_detail"] = r.reachability_detail();
  j["reachability_checked_s"] = r.has_reachability_checked_s() ? Json(r.reachability_checked_s()) : Json(nullptr);
  j["nat_mapping"] = r.nat_mapping();
  j["stun"] = Json::array();
  for (const auto& s : r.stun()) {
    j["stun"].push_back(Json{{"server", s.server()},
                             {"mapped", s.has_mapped() ? Json(s.mapped()) : Json(nullptr)},
                             {"rtt_ms", s.rtt_ms()},
                             {"error", s.error().empty() ? Json(nullptr) : Json(s.error())}});
  }
  j["port_mapping"] = r.port_mapping();
  auto text_or_null = [](const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); };
  const auto& mapping = r.port_mapping_state();
  j["port_mapping_state"] = Json::object({{"enabled", mapping.enabled()},
                                          {"addr", text_or_null(mapping.addr())},
                                          {"gateway", text_or_null(mapping.gateway())},
                                          {"lifetime_s", mapping.lifetime_s()},
                                          {"renew_in_s", mapping.renew_in_s()},
                                          {"renewals", mapping.renewals()},
                                          {"error", text_or_null(mapping.error())}});
  j["relay"] = Json::object({{"state", r.relay().state().empty() ? "none" : r.relay().state()},
                             {"peer", text_or_null(r.relay().peer())},
                             {"addr", text_or_null(r.relay().addr())},
                             {"error", text_or_null(r.relay().error())}});
  if (r.has_relay_service()) {
    const auto& s = r.relay_service();
    j["relay_service"] = Json::object({{"reservations", s.reservations()},
                                       {"circuits", s.circuits()},
                                       {"bytes_relayed", s.bytes_relayed()},
                                       {"circuits_refused", s.circuits_refused()},
                                       {"max_reservations", s.max_reservations()},
                                       {"max_circuits", s.max_circuits()},
                                       {"max_rate_mib", s.max_rate_mib()}});
  } else {
    j["relay_service"] = nullptr;
  }
  j["punching"] = Json::object(
      {{"attempts", r.punching().attempts()},
       {"succeeded", r.punching().succeeded()},
       {"direct_calls", r.punching().direct_calls()},
       {"direct", Json(std::vector<std::string>(r.punching().direct().begin(), r.punching().direct().end()))},
       {"relayed", Json(std::vector<std::string>(r.punching().relayed().begin(), r.punching().relayed().end()))}});
  return j;
}

Json punch_json(const proto::PunchReply& r) {
  return Json{{"node_id", r.node_id()},
              {"addr", r.addr()},
              {"result", r.result()},
              {"rtt_ms", r.rtt_ms()},
              {"elapsed_ms", r.elapsed_ms()},
              {"attempts", r.attempts()},
              {"error", r.error().empty() ? Json(nullptr) : Json(r.error())}};
}

void print_netcheck_text(const proto::NetcheckReply& r) {
  TextTable table;
  std::vector<std::string> observed;
  for (const auto& o : r.observed()) {
    observed.push_back(fmt::format("{} ({} observer{}{})", o.ip(), o.observers(), o.observers() == 1 ? "" : "s",
                                   o.adopted() ? ", adopted" : ""));
  }
  table.row("observed", observed.empty() ? "nothing yet" : join(observed, ", "));
  std::string reachability = r.reachability();
  if (!r.reachability_detail().empty()) reachability += " (" + r.reachability_detail() + ")";
  if (r.has_reachability_checked_s())
    reachability += fmt::format(", checked {} ago", format_duration(r.reachability_checked_s()));
  table.row("reachability", reachability);
  table.row("nat_mapping", r.nat_mapping());
  const auto& mapping = r.port_mapping_state();
  std::string port_mapping = r.port_mapping();
  if (!mapping.addr().empty()) {
    port_mapping += fmt::format(
        ": the router forwards {} ({}, renewed {} times, next in {})", mapping.addr(),
        mapping.lifetime_s() == 0 ? std::string("until removed") : format_duration(mapping.lifetime_s()) + " lease",
        mapping.renewals(), format_duration(mapping.renew_in_s()));
  }
  if (!mapping.error().empty()) port_mapping += fmt::format(" ({})", mapping.error());
  table.row("port_mapping", port_mapping);
  std::string relay = r.relay().state().empty() ? "none" : r.relay().state();
  if (!r.relay().addr().empty())
    relay += fmt::format(": peers call {} (relayed by {})", r.relay().addr(), r.relay().peer());
  if (!r.relay().error().empty()) relay += fmt::format(" (last error: {})", r.relay().error());
  table.row("relay", relay);
  if (r.has_relay_service()) {
    const auto& s = r.relay_service();
    table.row(
        "relaying",
        fmt::format("{}/{} reservations, {}/{} circuits, {} bytes relayed, {} refused, rate {}", s.reservations(),
                    s.max_reservations(), s.circuits(), s.max_circuits(), s.bytes_relayed(), s.circuits_refused(),
                    s.max_rate_mib() == 0 ? std::string("unlimited") : fmt::format("{} MiB/s", s.max_rate_mib())));
  } else {
    table.row("relaying", "off (--relay-max-reservations 0)");
  }
  const auto& punching = r.punching();
  std::string punch = fmt::format("{} of {} attempts worked, {} calls made direct", punching.succeeded(),
                                  punching.attempts(), punching.direct_calls());
  const std::vector<std::string> direct(punching.direct().begin(), punching.direct().end());
  const std::vector<std::string> relayed(punching.relayed().begin(), punching.relayed().end());
  if (!direct.empty()) punch += "; direct to " + join(direct, ", ");
  if (!relayed.empty()) punch += "; still relayed to " + join(relayed, ", ");
  table.row("punching", punch);
  std::vector<std::string> stun;
  for (const auto& s : r.stun()) {
    if (s.has_mapped()) {
      stun.push_back(fmt::format("{} sees {} ({} ms)", s.server(), s.mapped(), s.rtt_ms()));
    } else {
      stun.push_back(fmt::format("{}: {}", s.server(), s.error().empty() ? "no answer yet" : s.error()));
    }
  }
  table.row("stun", stun.empty() ? "no --stun servers" : join(stun, "; "));
  fmt::print("{}", table.render());
}

}  // namespace

int cmd_netcheck(const CliArgs& args) {
  if (!parse_arguments({.command = "netcheck"}, args)) return 2;
  return show(args, ControlClient(args.global).netcheck(), netcheck_json, print_netcheck_text);
}

int cmd_punch(const CliArgs& args) {
  auto parsed = parse_arguments({.command = "punch", .positionals = {"PEER"}, .required = 1}, args);
  if (!parsed) return 2;
  // Three attempts, each up to a relay round trip, two connects and pings.
  constexpr std::chrono::seconds kAttemptRoundLimit{90};
  auto reply = ControlClient(args.global).punch(parsed->positionals[0], kAttemptRoundLimit);
  if (!reply) return fail(reply.error());
  if (args.global.json) {
    print_json(punch_json(*reply));
  } else if (reply->result() == "punched") {
    fmt::print("direct connection to {} ({}) in {} ms, {} attempt{}; relay round trip {} ms\n", reply->node_id(),
               reply->addr(), reply->elapsed_ms(), reply->attempts(), reply->attempts() == 1 ? "" : "s",
               reply->rtt_ms());
  } else {
    fmt::print("no direct connection to {} ({}) after {} ms: {}; calls stay on its relay\n", reply->node_id(),
               reply->addr(), reply->elapsed_ms(), reply->error());
  }
  return reply->result() == "punched" ? 0 : 1;
}

}  // namespace p2pd::cli
