#include "cli/commands_chord.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "cli/command_support.hpp"
#include "cli/control_client.hpp"
#include "cli/output.hpp"
#include "common/atomic_file.hpp"
#include "common/hex.hpp"

namespace p2pd::cli {
namespace {

Json node_json(const proto::NodeRef& node) {
  return Json{{"node_id", node.node_id()}, {"addr", node.addr()}};
}

template <class Nodes>
Json nodes_json(const Nodes& nodes) {
  Json out = Json::array();
  for (const auto& node : nodes) out.push_back(node_json(node));
  return out;
}

// "0123456789ab (127.0.0.1:7420)"
std::string node_text(const proto::NodeRef& node) {
  return fmt::format("{} ({})", short_id(node.node_id()), node.addr());
}

template <class Nodes>
std::string nodes_text(const Nodes& nodes) {
  std::vector<std::string> items;
  for (const auto& node : nodes) items.push_back(node_text(node));
  return items.empty() ? "none" : join(items, ", ");
}

// The commands that take a KEY have it as their first positional: any
// non-empty string (40 hex digits are the id itself; p2pd hashes the rest).
bool key_is_usable(std::string_view command, const std::string& key) {
  if (!key.empty()) return true;
  usage_error(fmt::format("{}: KEY must not be empty", command));
  return false;
}

// ring

Json ring_json(const proto::RingReply& r) {
  Json j;
  j["self"] = node_json(r.self());
  j["predecessor"] = r.has_predecessor() ? node_json(r.predecessor()) : Json(nullptr);
  j["successors"] = nodes_json(r.successors());
  j["fingers"] = Json::array();
  for (const auto& f : r.fingers()) {
    j["fingers"].push_back(Json{{"start", f.start()}, {"node_id", f.node_id()}, {"addr", f.addr()}});
  }
  j["member"] = r.member();
  return j;
}

void print_ring_text(const proto::RingReply& r) {
  TextTable table;
  table.row("self", node_text(r.self()));
  table.row("member", r.member() ? "yes" : "no (still joining)");
  table.row("predecessor", r.has_predecessor() ? node_text(r.predecessor()) : "none");
  if (r.successors().empty()) table.row("successors", "none");
  for (int i = 0; i < r.successors().size(); ++i) {
    const auto& s = r.successors(i);
    table.row(i == 0 ? "successors" : "", node_text(s) + (s.node_id() == r.self().node_id() ? " (self)" : ""));
  }
  std::vector<std::string> fingers;
  std::set<std::string> seen;
  for (const auto& f : r.fingers()) {
    if (seen.insert(f.node_id()).second) fingers.push_back(short_id(f.node_id()));
  }
  table.row("fingers", fingers.empty() ? "none" : fmt::format("{} distinct: {}", fingers.size(), join(fingers, ", ")));
  fmt::print("{}", table.render());
}

// lookup

Json lookup_json(const proto::LookupReply& r) {
  Json j;
  j["key"] = r.key();
  j["owner"] = node_json(r.owner());
  j["hops"] = r.hops();
  j["path"] = Json::array();
  for (const auto& id : r.path()) j["path"].push_back(id);
  j["replicas"] = nodes_json(r.replicas());
  return j;
}

void print_lookup_text(const proto::LookupReply& r) {
  std::vector<std::string> path;
  for (const auto& id : r.path()) path.push_back(short_id(id));
  TextTable table;
  table.row("key", r.key());
  table.row("owner", node_text(r.owner()));
  table.row("hops", std::to_string(r.hops()));
  table.row("path", path.empty() ? "none (this node knew the owner)" : join(path, " -> "));
  table.row("replicas", nodes_text(r.replicas()));
  fmt::print("{}", table.render());
}

// peers

Json peers_json(const proto::PeersReply& r) {
  Json peers = Json::array();
  for (const auto& p : r.peers()) {
    Json roles = Json::array();
    for (const auto& role : p.roles()) roles.push_back(role);
    peers.push_back(Json{{"node_id", p.node_id()},
                         {"addr", p.addr()},
                         {"connection", p.connection()},
                         {"executor", p.executor()},
                         {"last_seen_s", p.has_last_seen_s() ? Json(p.last_seen_s()) : Json(nullptr)},
                         {"roles", std::move(roles)}});
  }
  return Json{{"peers", std::move(peers)}};
}

void print_peers_text(const proto::PeersReply& r) {
  if (r.peers().empty()) {
    fmt::print("no peers known\n");
    return;
  }
  ColumnTable table({"NODE", "ADDR", "CONNECTION", "EXECUTOR", "LAST SEEN", "ROLES"});
  for (const auto& p : r.peers()) {
    table.row({short_id(p.node_id()), p.addr(), p.connection(), p.executor(),
               p.has_last_seen_s() ? format_duration(p.last_seen_s()) + " ago" : "never",
               p.roles().empty() ? "-" : join(p.roles(), ", ")});
  }
  fmt::print("{}", table.render());
}

// put

// The value of `put`: VALUE, or the contents of --file. Bad usage, a value
// too large included, is ErrorCode::invalid_argument (exit 2); a file that
// cannot be read is any other code (exit 1).
Result<std::string> put_value(const CommandArguments& parsed) {
  const std::string* file = parsed.option("--file");
  const bool has_value = parsed.positionals.size() > 1;
  if (file != nullptr && has_value) {
    return make_error(ErrorCode::invalid_argument, "put: give a VALUE or --file FILE, not both");
  }
  if (file == nullptr && !has_value) {
    return make_error(ErrorCode::invalid_argument, "put: missing VALUE or --file FILE (see p2pctl put --help)");
  }
  const auto too_large = [](const std::string& what) {
    return make_error(ErrorCode::invalid_argument, "put: {} is larger than {} bytes (1 MiB), the most a value may hold",
                      what, kMaxValueBytes);
  };
  if (has_value) {
    if (parsed.positionals[1].size() > kMaxValueBytes) return too_large("VALUE");
    return parsed.positionals[1];
  }
  std::error_code ec;
  if (std::filesystem::is_regular_file(*file, ec) && std::filesystem::file_size(*file, ec) > kMaxValueBytes && !ec) {
    return too_large(*file);
  }
  auto contents = read_small_file(*file, kMaxValueBytes);
  // read_small_file says corrupt only when the file grew past the limit.
  if (!contents) {
    if (contents.error().code == ErrorCode::corrupt) return too_large(*file);
    return Error{contents.error().code, "put: " + contents.error().message};
  }
  return contents;
}

Json put_json(const proto::PutReply& r) {
  Json j;
  j["key"] = r.key();
  j["version"] = r.version();
  j["copies"] = r.copies();
  j["holders"] = nodes_json(r.holders());
  return j;
}

void print_put_text(const proto::PutReply& r) {
  TextTable table;
  table.row("key", r.key());
  table.row("version", std::to_string(r.version()));
  table.row("copies", std::to_string(r.copies()));
  table.row("holders", nodes_text(r.holders()));
  fmt::print("{}", table.render());
}

// get

Json get_json(const proto::GetReply& r) {
  Json j;
  j["key"] = r.key();
  j["version"] = r.version();
  j["bytes"] = r.value().size();
  if (is_valid_utf8(r.value())) {
    j["value"] = r.value();
  } else {
    const auto* data = reinterpret_cast<const std::uint8_t*>(r.value().data());
    j["value_hex"] = to_hex(std::span<const std::uint8_t>(data, r.value().size()));
  }
  return j;
}

// "key not found: 'KEY'", and p2pd's detail when it says more than that.
Error key_not_found(const std::string& key, const Error& error) {
  constexpr std::string_view kPrefix = "key not found";
  std::string_view detail = error.message;
  if (detail.starts_with(kPrefix)) detail.remove_prefix(kPrefix.size());
  while (!detail.empty() && (detail.front() == ' ' || detail.front() == ':')) detail.remove_prefix(1);
  if (detail.empty()) return make_error(ErrorCode::not_found, "key not found: '{}'", key);
  if (detail.front() == '(') return make_error(ErrorCode::not_found, "key not found: '{}' {}", key, detail);
  return make_error(ErrorCode::not_found, "key not found: '{}' ({})", key, detail);
}

int write_value_to_stdout(const std::string& value) {
  errno = 0;
  const bool written = std::fwrite(value.data(), 1, value.size(), stdout) == value.size();
  if (std::fflush(stdout) != 0 || !written) {
    return fail(make_error(ErrorCode::io, "cannot write the value to stdout: {}",
                           errno != 0 ? std::strerror(errno) : "write failed"));
  }
  return 0;
}

// leave

Json leave_json(const proto::LeaveReply& r) {
  Json j;
  j["keys_handed_over"] = r.keys_handed_over();
  j["successor"] = r.successor().empty() ? Json(nullptr) : Json(r.successor());
  return j;
}

void print_leave_text(const proto::LeaveReply& r) {
  const std::uint32_t n = r.keys_handed_over();
  if (r.successor().empty()) {
    fmt::print("p2pd had no other node to hand its keys to and is exiting\n");
  } else {
    fmt::print("p2pd handed {} key{} to {} and is exiting\n", n, n == 1 ? "" : "s", r.successor());
  }
}

}  // namespace

int cmd_ring(const CliArgs& args) {
  if (!parse_arguments({.command = "ring"}, args)) return 2;
  return show(args, ControlClient(args.global).ring(), ring_json, print_ring_text);
}

int cmd_lookup(const CliArgs& args) {
  auto parsed = parse_arguments({.command = "lookup", .positionals = {"KEY"}, .required = 1}, args);
  if (!parsed || !key_is_usable("lookup", parsed->positionals[0])) return 2;
  return show(args, ControlClient(args.global).lookup(parsed->positionals[0]), lookup_json, print_lookup_text);
}

int cmd_peers(const CliArgs& args) {
  if (!parse_arguments({.command = "peers"}, args)) return 2;
  return show(args, ControlClient(args.global).peers(), peers_json, print_peers_text);
}

int cmd_put(const CliArgs& args) {
  auto parsed = parse_arguments(
      {.command = "put", .positionals = {"KEY", "VALUE"}, .required = 1, .value_options = {"--file"}}, args);
  if (!parsed || !key_is_usable("put", parsed->positionals[0])) return 2;
  auto value = put_value(*parsed);
  if (!value) {
    return value.error().code == ErrorCode::invalid_argument ? usage_error(value.error().message) : fail(value.error());
  }
  return show(args, ControlClient(args.global).put(parsed->positionals[0], *value), put_json, print_put_text);
}

int cmd_get(const CliArgs& args) {
  auto parsed =
      parse_arguments({.command = "get", .positionals = {"KEY"}, .required = 1, .value_options = {"--out"}}, args);
  if (!parsed || !key_is_usable("get", parsed->positionals[0])) return 2;
  const std::string& key = parsed->positionals[0];
  ControlClient client(args.global);
  auto reply = client.get(key);
  if (!reply)
    return fail(reply.error().code == ErrorCode::not_found ? key_not_found(key, reply.error()) : reply.error());
  const std::string& value = reply->value();
  if (const std::string* out = parsed->option("--out")) {
    constexpr mode_t kNewFileMode = 0666;  // less the umask, as any new file
    if (auto written = write_file_atomically(*out, std::span<const char>(value.data(), value.size()), kNewFileMode);
        !written) {
      return fail(Error{written.error().code, "get: " + written.error().message});
    }
    if (args.global.json) {
      print_json(Json{{"key", reply->key()}, {"version", reply->version()}, {"bytes", value.size()}, {"path", *out}});
    }
    return 0;
  }
  if (args.global.json) {
    print_json(get_json(*reply));
    return 0;
  }
  return write_value_to_stdout(value);
}

int cmd_leave(const CliArgs& args) {
  if (!parse_arguments({.command = "leave"}, args)) return 2;
  return show(args, ControlClient(args.global).leave(), leave_json, print_leave_text);
}

}  // namespace p2pd::cli
