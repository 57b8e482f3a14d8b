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
  return j;
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
  table.row("port_mapping", r.port_mapping());
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

}  // namespace p2pd::cli
