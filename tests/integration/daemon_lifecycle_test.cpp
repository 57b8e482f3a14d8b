// Real p2pd processes on loopback, driven through the real p2pctl.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <regex>

#include "tests/support/temp_dir.hpp"
#include "tests/support/test_daemon.hpp"

using namespace p2pd::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// Exactly one line on stderr, starting with the tool's error prefix.
void check_one_error_line(const std::string& err, const std::string& prefix) {
  INFO("stderr: " << err);
  CHECK(err.rfind(prefix, 0) == 0);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  CHECK(err.back() == '\n');
}

}  // namespace

TEST_CASE("p2pctl --json status has every contract field", "[integration]") {
  TempDir dir;
  TestDaemon daemon(dir.path(), "a");
  REQUIRE(daemon.start());
  const json s = daemon.status_json();
  REQUIRE(s.is_object());
  INFO(s.dump());
  REQUIRE(s["node_id"].is_string());
  CHECK(std::regex_match(s["node_id"].get<std::string>(), std::regex("[0-9a-f]{40}")));
  REQUIRE(s["listen"].is_string());
  CHECK(std::regex_match(s["listen"].get<std::string>(), std::regex(R"(127\.0\.0\.1:[1-9][0-9]*)")));
  CHECK(s["observed_addrs"].is_array());
  CHECK(s["reachability"] == "unknown");  // alone: no peer to dial it back
  // Alone, it may have elected itself already (slower builds ask later).
  CHECK((s["leader_id"].is_null() || s["leader_id"] == s["node_id"]));
  REQUIRE(s["executor"].is_string());
  CHECK((s["executor"] == "cpu" || s["executor"] == "cuda"));
  const auto version = run_command({p2pd_binary(), "--version"});
  CHECK(version.out == "p2pd " + s["version"].get<std::string>() + "\n");
  CHECK(s["uptime_s"].is_number_unsigned());
  CHECK(s["pid"] == daemon.process().pid());

  // The text form shows the same node.
  const auto text = daemon.ctl({"status"});
  REQUIRE(text.status.exited_with(0));
  CHECK_THAT(text.out, Catch::Contains(s["node_id"].get<std::string>()));
  CHECK(daemon.stop().exited_with(0));
}

TEST_CASE("the node id survives restarts and port 0 picks a port", "[integration]") {
  TempDir dir;
  TestDaemon daemon(dir.path(), "a");
  REQUIRE(daemon.start());
  const json first = daemon.status_json();
  REQUIRE(daemon.stop().exited_with(0));
  CHECK_FALSE(std::filesystem::exists(daemon.socket()));  // removed on clean exit
  REQUIRE(daemon.start());
  const json second = daemon.status_json();
  CHECK(second["node_id"] == first["node_id"]);
  const std::string log = daemon.log();
  REQUIRE(log.find("(new identity)") != std::string::npos);
  CHECK(log.find("(new identity)") == log.rfind("(new identity)"));  // created once, not twice
}

TEST_CASE("p2pctl exit codes: missing daemon is 1 and bad usage is 2", "[integration]") {
  TempDir dir;
  const auto missing = run_command({p2pctl_binary(), "--socket", (dir.path() / "none.sock").string(), "status"});
  CHECK(missing.status.exited_with(1));
  check_one_error_line(missing.err, "p2pctl: error: ");
  CHECK_THAT(missing.err, Catch::Contains("is p2pd running?"));
  CHECK(missing.out.empty());

  const auto missing_json =
      run_command({p2pctl_binary(), "--json", "--socket", (dir.path() / "none.sock").string(), "status"});
  CHECK(missing_json.status.exited_with(1));
  CHECK(missing_json.out.empty());  // scripts never parse an error as a document

  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"frobnicate"}, {}, {"--timeout", "x", "status"}, {"status", "extra"}, {"--socket"}, {"help", "nope"}}) {
    std::vector<std::string> argv = {p2pctl_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto bad = run_command(argv);
    INFO((args.empty() ? std::string("(no args)") : args[0]));
    CHECK(bad.status.exited_with(2));
    check_one_error_line(bad.err, "p2pctl: error: ");
  }
  const auto help = run_command({p2pctl_binary(), "--help"});
  CHECK(help.status.exited_with(0));
  CHECK_THAT(help.out, Catch::Contains("status"));
  CHECK(run_command({p2pctl_binary(), "--version"}).status.exited_with(0));
}

TEST_CASE("P2PD_SOCKET names the socket", "[integration]") {
  TempDir dir;
  TestDaemon daemon(dir.path(), "a");
  REQUIRE(daemon.start());
  const auto result =
      run_command({p2pctl_binary(), "--json", "status"}, 10s, {"P2PD_SOCKET=" + daemon.socket().string()});
  REQUIRE(result.status.exited_with(0));
  CHECK(json::parse(result.out)["pid"] == daemon.process().pid());
}

TEST_CASE("p2pd usage errors are one line and exit 2", "[integration]") {
  TempDir dir;
  const auto conf = dir.path() / "bad.conf";
  std::ofstream(conf) << "listen = 127.0.0.1:0\nthis line is wrong\n";
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {{"--bogus"}, "unrecognised option"},
           {{"--listen", "nowhere"}, "--listen: 'nowhere' is not HOST:PORT"},
           {{"--executor", "tpu"}, "--executor"},
           {{"--config", conf.string()}, "bad.conf:2: expected 'key = value'"},
           {{"--config", (dir.path() / "missing.conf").string()}, "cannot read config file"},
       }) {
    std::vector<std::string> argv = {p2pd_binary()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const auto result = run_command(argv, 10s);
    INFO(c.args[0]);
    CHECK(result.status.exited_with(2));
    check_one_error_line(result.err, "p2pd: error: ");
    CHECK_THAT(result.err, Catch::Contains(c.expected));
  }
  const auto help = run_command({p2pd_binary(), "--help"});
  CHECK(help.status.exited_with(0));
  CHECK_THAT(help.out, Catch::Contains("--control-socket"));
}

TEST_CASE("SIGTERM and SIGINT stop cleanly with exit 0", "[integration]") {
  TempDir dir;
  for (int signal : {SIGTERM, SIGINT}) {
    TestDaemon daemon(dir.path(), signal == SIGTERM ? "term" : "int");
    REQUIRE(daemon.start());
    daemon.process().send_signal(signal);
    const auto status = daemon.process().wait_for(15s);
    REQUIRE(status);
    CHECK(status->exited_with(0));
    CHECK_FALSE(std::filesystem::exists(daemon.socket()));
    CHECK_THAT(daemon.log(), Catch::Contains("stopped"));
  }
}

TEST_CASE("SIGHUP re-reads the config file", "[integration]") {
  TempDir dir;
  const auto conf = dir.path() / "p2pd.conf";
  std::ofstream(conf) << "log-level = info\n";
  TestDaemon daemon(dir.path(), "a", {"--config", conf.string()});
  REQUIRE(daemon.start());

  std::ofstream(conf, std::ios::trunc) << "log-level = warn\nexecutor = cpu\n";
  daemon.process().send_signal(SIGHUP);
  REQUIRE(eventually([&] { return daemon.log().find("log-level is now warn") != std::string::npos; }, 10s));
  CHECK(eventually([&] { return daemon.log().find("'executor' changed") != std::string::npos; }, 10s));

  std::ofstream(conf, std::ios::trunc) << "garbage\n";
  daemon.process().send_signal(SIGHUP);
  REQUIRE(eventually([&] { return daemon.log().find("config not reloaded") != std::string::npos; }, 10s));
  CHECK_THAT(daemon.log(), Catch::Contains("p2pd.conf:1: expected 'key = value'"));
  CHECK(daemon.ctl({"status"}).status.exited_with(0));  // still serving
  CHECK(daemon.stop().exited_with(0));
}

TEST_CASE("the control socket is 0660 in a created directory and others cannot use it", "[integration]") {
  TempDir dir;
  TestDaemon daemon(dir.path(), "a");
  daemon.set_socket(dir.path() / "run" / "p2pd" / "p2pd.sock");  // p2pd must create run/p2pd/
  daemon.spawn();
  REQUIRE(eventually([&] { return daemon.ctl({"status"}, 5s).status.exited_with(0); }, 30s));
  struct stat st {};
  REQUIRE(::stat(daemon.socket().c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 07777) == 0660);

  if (::geteuid() == 0) {
    // The directory chain must be traversable for the check to be about the
    // socket's own mode, so open the temp dirs to others.
    for (auto p = daemon.socket().parent_path(); p != "/tmp" && p != "/"; p = p.parent_path()) ::chmod(p.c_str(), 0755);
    const auto other = run_command({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                    p2pctl_binary(), "--socket", daemon.socket().string(), "status"});
    CHECK(other.status.exited_with(1));
    CHECK_THAT(other.err, Catch::Contains("permission denied"));
  }
}

TEST_CASE("a second daemon on the same socket or state dir or port is refused", "[integration]") {
  TempDir dir;
  TestDaemon first(dir.path(), "a");
  REQUIRE(first.start());
  const std::string port = first.status_json()["listen"].get<std::string>().substr(10);

  SECTION("same state dir") {
    const auto r = run_command({p2pd_binary(), "--config", "/dev/null", "--listen", "127.0.0.1:0", "--control-socket",
                                (dir.path() / "b.sock").string(), "--state-dir", first.state_dir().string()},
                               15s);
    CHECK(r.status.exited_with(1));
    CHECK_THAT(r.err, Catch::Contains("in use by another p2pd"));
  }
  SECTION("same control socket") {
    const auto r = run_command({p2pd_binary(), "--config", "/dev/null", "--listen", "127.0.0.1:0", "--control-socket",
                                first.socket().string(), "--state-dir", (dir.path() / "b").string()},
                               15s);
    CHECK(r.status.exited_with(1));
    CHECK_THAT(r.err, Catch::Contains("another p2pd is serving"));
  }
  SECTION("same port") {
    const auto r =
        run_command({p2pd_binary(), "--config", "/dev/null", "--listen", "127.0.0.1:" + port, "--control-socket",
                     (dir.path() / "b.sock").string(), "--state-dir", (dir.path() / "b").string()},
                    15s);
    CHECK(r.status.exited_with(1));
    CHECK_THAT(r.err, Catch::Contains("cannot listen on 127.0.0.1:" + port));
    CHECK_FALSE(std::filesystem::exists(dir.path() / "b.sock"));  // a failed start cleans up
  }
  // The first daemon is unharmed by all of it.
  CHECK(first.ctl({"status"}).status.exited_with(0));
}

TEST_CASE("a stale socket left by a killed daemon is replaced", "[integration]") {
  TempDir dir;
  TestDaemon daemon(dir.path(), "a");
  REQUIRE(daemon.start());
  CHECK(daemon.kill().signal == SIGKILL);
  REQUIRE(std::filesystem::exists(daemon.socket()));
  const auto dead = daemon.ctl({"status"});
  CHECK(dead.status.exited_with(1));
  CHECK_THAT(dead.err, Catch::Contains("not running"));
  REQUIRE(daemon.start());
  CHECK_THAT(daemon.log(), Catch::Contains("removed stale control socket"));
}

TEST_CASE("executor cuda without a usable GPU fails clearly", "[integration]") {
  TempDir dir;
  TestDaemon probe(dir.path(), "probe");
  REQUIRE(probe.start());
  const bool have_gpu = probe.status_json()["executor"] == "cuda";
  probe.stop();
  TestDaemon daemon(dir.path(), "a", {"--executor", "cuda"});
  if (have_gpu) {
    REQUIRE(daemon.start());
    CHECK(daemon.status_json()["executor"] == "cuda");
  } else {
    daemon.spawn();
    const auto status = daemon.process().wait_for(30s);
    REQUIRE(status);
    CHECK(status->exited_with(1));
    CHECK_THAT(daemon.log(), Catch::Contains("p2pd: error: --executor cuda:"));
  }
}

TEST_CASE("a node pings its bootstrap peers and reports them", "[integration]") {
  TempDir dir;
  TestDaemon first(dir.path(), "a");
  REQUIRE(first.start());
  const json a = first.status_json();
  TestDaemon second(dir.path(), "b", {"--bootstrap", a["listen"].get<std::string>(), "--bootstrap", "127.0.0.1:1"});
  REQUIRE(second.start());
  json b;
  REQUIRE(eventually(
      [&] {
        b = second.status_json();
        return b["bootstrap"].size() == 2 && !b["bootstrap"][0]["node_id"].is_null() &&
               b["bootstrap"][1]["failures"].get<int>() >= 1;
      },
      30s));
  INFO(b.dump());
  CHECK(b["bootstrap"][0]["addr"] == a["listen"]);
  CHECK(b["bootstrap"][0]["node_id"] == a["node_id"]);
  CHECK(b["bootstrap"][1]["node_id"].is_null());  // nothing listens on port 1
  CHECK_THAT(second.log(), Catch::Contains("answered: node " + a["node_id"].get<std::string>()));
  CHECK_THAT(second.log(), Catch::Contains("bootstrap peer 127.0.0.1:1 unreachable"));
  const auto text = second.ctl({"status"});
  CHECK_THAT(text.out, Catch::Contains("(node " + a["node_id"].get<std::string>().substr(0, 8) + ", answered)"));
  CHECK(second.stop().exited_with(0));  // a pending retry does not hold up shutdown
}
