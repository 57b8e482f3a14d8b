// What a local user or a crashing p2pctl can throw at the control socket,
// and what anyone can throw at the peer port, must not hurt the daemon.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <google/protobuf/stubs/logging.h>
#include <grpcpp/grpcpp.h>

#include "common/host_port.hpp"
#include "common/npy.hpp"
#include "proto/peer.grpc.pb.h"
#include "tests/support/loopback.hpp"
#include "tests/support/process.hpp"
#include "tests/support/secure_peer.hpp"

#include "tests/support/temp_dir.hpp"
#include "tests/support/test_daemon.hpp"

using namespace p2pd::test;
using namespace std::chrono_literals;

namespace {

int connect_unix(const std::filesystem::path& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::size_t open_fds(pid_t pid) {
  std::error_code ec;
  const std::filesystem::directory_iterator fds("/proc/" + std::to_string(pid) + "/fd", ec);
  return ec ? 0 : static_cast<std::size_t>(std::distance(fds, std::filesystem::directory_iterator{}));
}

}  // namespace

TEST_CASE("the daemon survives p2pctl killed mid-call", "[integration]") {
  TempDir dir;
  TestDaemon daemon(dir.path(), "a");
  REQUIRE(daemon.start());
  const pid_t pid = daemon.process().pid();
  // Kill p2pctl at staggered moments: before connecting, mid-handshake,
  // mid-call, after the answer.
  int killed_running = 0;
  for (int i = 0; i < 60; ++i) {
    ChildProcess ctl({p2pctl_binary(), "--socket", daemon.socket().string(), "status"}, "/dev/null", "/dev/null");
    std::this_thread::sleep_for(std::chrono::microseconds(i * 500));
    if (!ctl.poll()) ++killed_running;
    ctl.kill();
  }
  INFO("p2pctl processes killed while running: " << killed_running);
  CHECK(killed_running > 0);
  const auto after = daemon.status_json();
  REQUIRE(after.is_object());
  CHECK(after["pid"] == pid);
  CHECK(daemon.process().running());
}

TEST_CASE("garbage and half requests and idle connections on the control socket", "[integration]") {
  TempDir dir;
  TestDaemon daemon(dir.path(), "a");
  REQUIRE(daemon.start());
  // A valid HTTP/2 preface then nothing; a truncated preface; random bytes;
  // a preface followed by a malformed frame.
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  std::vector<int> idle;
  for (int i = 0; i < 50; ++i) {
    const int fd = connect_unix(daemon.socket());
    REQUIRE(fd >= 0);
    switch (i % 4) {
      case 0: send_all(fd, preface); break;
      case 1: send_all(fd, preface.substr(0, 7)); break;
      case 2: {
        std::string junk(4096, '\0');
        for (std::size_t k = 0; k < junk.size(); ++k) junk[k] = static_cast<char>((k * 2654435761u + i) >> 13);
        send_all(fd, junk);
        break;
      }
      case 3: send_all(fd, preface + std::string("\x00\xff\xff\x04\x00\x00\x00\x00\x00", 9)); break;
    }
    if (i % 5 == 0) {
      idle.push_back(fd);  // keep some open and silent
    } else {
      ::close(fd);
    }
  }
  // With idle connections still open the daemon keeps answering.
  for (int i = 0; i < 5; ++i) CHECK(daemon.ctl({"status"}).status.exited_with(0));
  for (int fd : idle) ::close(fd);
  CHECK(daemon.ctl({"status"}).status.exited_with(0));
  CHECK(daemon.stop().exited_with(0));
}

TEST_CASE("1000 status calls in a row are all answered with RSS flat", "[integration][soak][footprint]") {
  TempDir dir;
  TestDaemon daemon(dir.path(), "a", {"--log-level", "info"});
  // Under ASan, freed memory waits in a quarantine (256 MiB by default) and
  // RSS grows with every call until it is full. Turn it off so RSS measures
  // the daemon, not the sanitizer; LeakSanitizer still checks at exit. Without
  // ASan the variable is ignored.
  const char* asan = std::getenv("ASAN_OPTIONS");
  daemon.add_env(std::string("ASAN_OPTIONS=") + (asan != nullptr ? std::string(asan) + ":" : "") +
                 "quarantine_size_mb=0:thread_local_quarantine_size_kb=0");
  REQUIRE(daemon.start());
  const pid_t pid = daemon.process().pid();
  constexpr int kCalls = 1000;
  std::vector<long> rss;  // KiB, sampled every 100 calls
  int failures = 0;
  for (int i = 1; i <= kCalls; ++i) {
    if (!daemon.ctl({"--json", "status"}, 10s).status.exited_with(0)) ++failures;
    if (i % 100 == 0) rss.push_back(p2pd::test::rss_kib(pid).value_or(-1));
  }
  CHECK(failures == 0);
  REQUIRE(rss.size() == 10);
  std::string trend;
  for (long r : rss) trend += std::to_string(r) + " ";
  INFO("RSS KiB every 100 calls: " << trend);
  // Warm-up (allocator pools, gRPC's per-thread caches) is over by call 500.
  // A leak grows RSS by the same amount every 100 calls, so the slope is the
  // median of the last five 100-call steps: one step where the allocator
  // maps a new region at once (seen once in CI: +216 KiB) is not a leak and
  // does not move the median. Measured steps are 10-30 KiB; a leak of
  // 0.5 KiB per call would make them 50 KiB. The total over the last 500
  // calls is also bounded, loosely, against one runaway step.
  // Under ASan the steps are 80-310 KiB even though the heap does not grow:
  // heaptrack on the plain build finds the live heap after 1500 calls within
  // 1 KiB of the heap after 300 (the sanitizer allocator's size classes and
  // metadata, not the daemon, grow RSS). So the ASan bound only catches a
  // gross leak (5 KiB a call); the plain build's bound is the real check, and
  // LeakSanitizer checks for lost memory at exit.
#if defined(__SANITIZE_ADDRESS__)
  constexpr long kMaxStepKib = 512;
  constexpr long kMaxGrowthKib = 8192;
#else
  constexpr long kMaxStepKib = 50;
  constexpr long kMaxGrowthKib = 2048;
#endif
  std::vector<long> steps;
  for (std::size_t i = 5; i < rss.size(); ++i) steps.push_back(rss[i] - rss[i - 1]);
  std::nth_element(steps.begin(), steps.begin() + 2, steps.end());
  const long median_step = steps[2];
  CHECK(median_step < kMaxStepKib);
  const long growth = rss.back() - rss[4];
  CHECK(growth < kMaxGrowthKib);
  CHECK(daemon.process().running());
  CHECK(daemon.stop().exited_with(0));
}

TEST_CASE(
    "300 connections of random bytes and 200 silent ones on the peer port: the daemon answers, closes the silent "
    "ones and stays bounded",
    "[integration][footprint]") {
  TempDir dir;
  // All from 127.0.0.1: lift the per-address cap (the next test has it) so
  // that every connection reaches gRPC.
  TestDaemon daemon(dir.path(), "a", {"--max-connections-per-ip", "4096"});
  REQUIRE(daemon.start());
  const pid_t pid = daemon.process().pid();
  const auto listen = p2pd::parse_host_port(daemon.status_json()["listen"].get<std::string>(), false);
  REQUIRE(listen);
  const std::size_t fds_before = open_fds(pid);
  const long rss_before = p2pd::test::rss_kib(pid).value_or(0);

  std::vector<int> silent;
  for (int i = 0; i < 200; ++i) {
    const int fd = connect_tcp(listen->port);
    REQUIRE(fd >= 0);
    silent.push_back(fd);
  }
  // They reach the daemon (accepted as it gets to them; well before the
  // 10 s it gives a silent connection).
  std::size_t fds_during = open_fds(pid);
  for (int i = 0; i < 50 && fds_during < fds_before + 150; ++i) {
    std::this_thread::sleep_for(20ms);
    fds_during = open_fds(pid);
  }
  std::mt19937 random(7);
  for (int i = 0; i < 300; ++i) {
    const int fd = connect_tcp(listen->port);
    REQUIRE(fd >= 0);
    std::string junk(1 + random() % 65536, '\0');
    for (auto& c : junk) c = static_cast<char>(random());
    send_all(fd, junk);
    ::close(fd);
  }
  // Answering all along.
  for (int i = 0; i < 3; ++i) CHECK(daemon.ctl({"status"}).status.exited_with(0));
  INFO("daemon fds: " << fds_before << " before, " << fds_during << " with 200 silent connections open");
  CHECK(fds_during >= fds_before + 150);

  // The silent ones never sent the HTTP/2 preface: the daemon closes them.
  int closed = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  for (int fd : silent) {
    if (closed_by_peer(fd, deadline)) ++closed;
    ::close(fd);
  }
  CHECK(closed == 200);
  // Its own ends close as gRPC lets them go (soon, not at once).
  std::size_t fds_after = open_fds(pid);
  for (int i = 0; i < 100 && fds_after > fds_before + 5; ++i) {
    std::this_thread::sleep_for(100ms);
    fds_after = open_fds(pid);
  }
  const long rss_after = p2pd::test::rss_kib(pid).value_or(0);
  INFO("daemon fds after: " << fds_after << "; RSS " << rss_before / 1024 << " MiB before, " << rss_after / 1024
                            << " MiB after");
  CHECK(fds_after <= fds_before + 5);
  CHECK(rss_after - rss_before < 128 * 1024);
  CHECK(daemon.ctl({"status"}).status.exited_with(0));
  CHECK(daemon.stop().exited_with(0));
}

TEST_CASE("other local users cannot use the control socket", "[integration]") {
  if (::geteuid() != 0) {
    WARN("skipped: needs root to act as another user");
    return;
  }
  TempDir dir;
  // The directory lets anyone through: only the socket's own mode (0660,
  // root's group) may keep nobody out.
  std::filesystem::permissions(dir.path(), std::filesystem::perms(0755));
  TestDaemon daemon(dir.path(), "a");
  REQUIRE(daemon.start());
  struct stat socket_stat {};
  REQUIRE(::stat(daemon.socket().c_str(), &socket_stat) == 0);
  CHECK((socket_stat.st_mode & 0777) == 0660);
  // A child that becomes nobody (65534, no supplementary groups) and tries
  // to connect.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    const int fd = connect_unix(daemon.socket());
    ::_exit(fd >= 0 ? 0 : (errno == EACCES ? 1 : 3));
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);  // EACCES: refused by the file mode
  CHECK(daemon.ctl({"status"}).status.exited_with(0));
}

TEST_CASE("the kernel's word on the caller decides: strangers are refused with a reason, jobs carry the caller's name",
          "[integration]") {
  if (::geteuid() != 0) {
    WARN("skipped: needs root to act as another user");
    return;
  }
  TempDir dir;
  std::filesystem::permissions(dir.path(), std::filesystem::perms(0755));
  TestDaemon daemon(dir.path(), "a");
  REQUIRE(daemon.start());
  // An operator loosened the socket's mode: the file no longer keeps nobody
  // out, the credentials check still does.
  std::filesystem::permissions(daemon.socket(), std::filesystem::perms(0666));
  struct stat socket_stat {};
  REQUIRE(::stat(daemon.socket().c_str(), &socket_stat) == 0);
  // A p2pctl nobody may run, and inputs nobody may read.
  const auto p2pctl = dir.path() / "p2pctl";
  std::filesystem::copy_file(p2pctl_binary(), p2pctl);
  std::filesystem::permissions(p2pctl, std::filesystem::perms(0755));
  const std::vector<float> a(4 * 3, 1.0f), b(3 * 2, 2.0f);
  REQUIRE(p2pd::npy::write_matrix(dir.path() / "a.npy", 4, 3, a));
  REQUIRE(p2pd::npy::write_matrix(dir.path() / "b.npy", 3, 2, b));
  std::filesystem::permissions(dir.path() / "a.npy", std::filesystem::perms(0644));
  std::filesystem::permissions(dir.path() / "b.npy", std::filesystem::perms(0644));
  const auto as_nobody = [&](const std::string& groups, std::vector<std::string> args) {
    std::vector<std::string> argv{"/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534"};
    if (groups.empty()) {
      argv.emplace_back("--clear-groups");
    } else {
      argv.insert(argv.end(), {"--groups", groups});
    }
    argv.insert(argv.end(), {p2pctl.string(), "--socket", daemon.socket().string()});
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv);
  };

  SECTION("nobody, in no group of the socket's, gets one line saying why, and exit 1") {
    const auto refused = as_nobody("", {"status"});
    INFO(refused.err);
    CHECK(refused.status.exited_with(1));
    CHECK(refused.out.empty());
    CHECK(refused.err.find("uid 65534") != std::string::npos);
    CHECK(refused.err.find("may not use this control socket") != std::string::npos);
    CHECK(std::count(refused.err.begin(), refused.err.end(), '\n') == 1);
    const auto submit = as_nobody(
        "", {"submit", "gemm", "--a", (dir.path() / "a.npy").string(), "--b", (dir.path() / "b.npy").string()});
    CHECK(submit.status.exited_with(1));
    CHECK(daemon.ctl_json({"jobs"})["jobs"].empty());
    CHECK(read_file(daemon.log_path()).find("refused a control connection from nobody (uid 65534") !=
          std::string::npos);
  }
  SECTION("a member of the socket's group is served, and its job is attributed to it, not to what p2pctl says") {
    const auto submitted = as_nobody(
        std::to_string(socket_stat.st_gid),
        {"submit", "gemm", "--a", (dir.path() / "a.npy").string(), "--b", (dir.path() / "b.npy").string(), "--wait"});
    INFO(submitted.err);
    REQUIRE(submitted.status.exited_with(0));
    const auto jobs = daemon.ctl_json({"jobs"});
    REQUIRE(jobs["jobs"].size() == 1);
    const auto job = daemon.ctl_json({"job", jobs["jobs"][0]["job_id"].get<std::string>()});
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    CHECK(job["submitter"] == std::string("nobody@") + host);
  }
  CHECK(daemon.ctl({"status"}).status.exited_with(0));
  CHECK(daemon.stop().exited_with(0));
}

TEST_CASE("500 peer messages with text that is not UTF-8 are refused, and libprotobuf's complaints rate-limited",
          "[integration]") {
  TempDir dir;
  TestDaemon daemon(dir.path(), "a");
  REQUIRE(daemon.start());
  const std::string listen = daemon.status_json()["listen"].get<std::string>();
  auto transport = p2pd::test::make_transport();
  auto stub = p2pd::proto::Peer::NewStub(p2pd::test::secure_channel(*transport, listen));
  p2pd::proto::PingRequest request;
  request.set_node_id(std::string(transport->self().bytes().begin(), transport->self().bytes().end()));
  request.set_version("\xff\xfe not UTF-8");
  const google::protobuf::LogSilencer quiet;  // our own stub complains as it serializes
  std::size_t refused = 0;
  for (int i = 0; i < 500; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    p2pd::proto::PingReply reply;
    refused += stub->Ping(&context, request, &reply).ok() ? 0 : 1;
  }
  CHECK(refused == 500);
  CHECK(daemon.ctl({"status"}).status.exited_with(0));
  // Through our log (the test daemon logs at debug), ten lines a minute.
  const std::string log = daemon.log();
  CHECK(log.find("libprotobuf") == std::string::npos);
  std::size_t lines = 0;
  for (auto at = log.find("protobuf: "); at != std::string::npos; at = log.find("protobuf: ", at + 1)) ++lines;
  CHECK(lines >= 1);
  CHECK(lines <= 20);
  CHECK(daemon.stop().exited_with(0));
}

TEST_CASE("one address holds at most --max-connections-per-ip peer connections, other addresses are still served",
          "[integration]") {
  TempDir dir;
  TestDaemon daemon(dir.path(), "a", {"--max-connections-per-ip", "16"});
  REQUIRE(daemon.start());
  const pid_t pid = daemon.process().pid();
  const std::string listen = daemon.status_json()["listen"].get<std::string>();
  const auto port = p2pd::parse_host_port(listen, false)->port;
  const std::size_t fds_before = open_fds(pid);

  // 100 silent connections from 127.0.0.2: 16 are kept (until the handshake
  // timeout), the other 84 closed as they come.
  std::vector<int> flood;
  for (int i = 0; i < 100; ++i) {
    const int fd = connect_tcp(port, "127.0.0.2");
    REQUIRE(fd >= 0);
    flood.push_back(fd);
  }
  std::size_t closed_at_once = 0;
  std::vector<int> kept;
  const auto soon = std::chrono::steady_clock::now() + 2s;
  for (int fd : flood) {
    if (closed_by_peer(fd, std::max(soon, std::chrono::steady_clock::now() + 20ms))) {
      ++closed_at_once;
      ::close(fd);
    } else {
      kept.push_back(fd);
    }
  }
  INFO("closed at once: " << closed_at_once << "; daemon fds " << fds_before << " before, " << open_fds(pid)
                          << " during");
  CHECK(closed_at_once == 84);
  CHECK(open_fds(pid) <= fds_before + 16 + 4);

  // Another address is served meanwhile: a peer's Ping, and p2pctl.
  auto transport = p2pd::test::make_transport();
  auto stub = p2pd::proto::Peer::NewStub(p2pd::test::secure_channel(*transport, listen));
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    p2pd::proto::PingRequest request;
    p2pd::proto::PingReply reply;
    CHECK(stub->Ping(&context, request, &reply).ok());
    // The daemon still knows where a connection it accepted comes from.
    CHECK(reply.observed_addr().starts_with("127.0.0.1:"));
  }
  CHECK(daemon.ctl({"status"}).status.exited_with(0));

  // The refusals are logged, but not one line each.
  const std::string log = daemon.log();
  std::size_t lines = 0;
  for (auto at = log.find("refused a peer connection from 127.0.0.2"); at != std::string::npos;
       at = log.find("refused a peer connection from 127.0.0.2", at + 1)) {
    ++lines;
  }
  CHECK(lines >= 1);
  CHECK(lines <= 5);

  // Once its connections close, the address may connect again.
  for (int fd : kept) ::close(fd);
  bool admitted_again = false;
  for (int attempt = 0; attempt < 50 && !admitted_again; ++attempt) {
    const int fd = connect_tcp(port, "127.0.0.2");
    REQUIRE(fd >= 0);
    admitted_again = !closed_by_peer(fd, std::chrono::steady_clock::now() + 200ms);
    ::close(fd);
  }
  CHECK(admitted_again);
  CHECK(daemon.stop().exited_with(0));
}

TEST_CASE("a peer that sends malformed message after malformed message is banned and disconnected", "[integration]") {
  TempDir dir;
  TestDaemon daemon(dir.path(), "a");
  REQUIRE(daemon.start());
  const std::string listen = daemon.status_json()["listen"].get<std::string>();
  auto transport = p2pd::test::make_transport();
  const std::string self(transport->self().bytes().begin(), transport->self().bytes().end());
  auto channel = p2pd::test::secure_channel(*transport, listen);
  auto stub = p2pd::proto::Peer::NewStub(channel);
  const auto ping = [&](const std::string& node_id) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    p2pd::proto::PingRequest request;
    request.set_node_id(node_id);
    p2pd::proto::PingReply reply;
    return stub->Ping(&context, request, &reply);
  };
  // A well-formed call first: not every call counts against the caller.
  REQUIRE(ping(self).ok());
  // A node id of the wrong size is malformed, and so is one that is not the
  // key this connection proved; ten in a burst reach the ban (eleven: what
  // decays between them adds up to a fraction of a point).
  for (int i = 0; i < 11; ++i) {
    const auto status = ping(i == 0 ? std::string(20, '\x01') : std::string("short"));
    INFO("malformed call " << i << ": " << status.error_message());
    if (i == 0) CHECK_THAT(status.error_message(), Catch::Contains("claims to come from another node"));
    if (i < 10) {
      CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    } else {
      // The ban may cut the connection before the answer goes out.
      CHECK((status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
             status.error_code() == grpc::StatusCode::UNAVAILABLE));
    }
  }
  // The connection is cut, and new ones from the address are closed as they come.
  bool refused = false;
  for (int i = 0; i < 20 && !refused; ++i) {
    refused = ping(self).error_code() == grpc::StatusCode::UNAVAILABLE;
    if (!refused) std::this_thread::sleep_for(100ms);
  }
  CHECK(refused);
  const auto port = p2pd::parse_host_port(listen, false)->port;
  const int fd = connect_tcp(port);
  REQUIRE(fd >= 0);
  CHECK(closed_by_peer(fd, std::chrono::steady_clock::now() + 2s));
  ::close(fd);
  CHECK(daemon.log().find("banned 127.0.0.1 for 600 s: malformed message after malformed message") !=
        std::string::npos);
  // Other addresses, and p2pctl, are served as before.
  const int other = connect_tcp(port, "127.0.0.2");
  REQUIRE(other >= 0);
  CHECK_FALSE(closed_by_peer(other, std::chrono::steady_clock::now() + 300ms));
  ::close(other);
  CHECK(daemon.ctl({"status"}).status.exited_with(0));
  CHECK(daemon.stop().exited_with(0));
}

TEST_CASE("a closed pool takes in nodes proving its secret and refuses one without it, with a log line",
          "[integration]") {
  TempDir dir;
  const auto secret = dir.path() / "pool.secret";
  { std::ofstream(secret) << "9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c\n"; }
  ::chmod(secret.c_str(), 0640);
  TestDaemon a(dir.path(), "a", {"--pool-secret-file", secret.string()});
  REQUIRE(a.start());
  const auto a_status = a.status_json();
  const std::string listen = a_status["listen"].get<std::string>();
  CHECK_THAT(a.log(), Catch::Contains("closed pool: peers must prove the secret in " + secret.string()));

  TestDaemon b(dir.path(), "b", {"--pool-secret-file", secret.string(), "--bootstrap", listen});
  REQUIRE(b.start());
  const std::string b_id = b.status_json()["node_id"].get<std::string>();
  const auto successor_of_a = [&] {
    const auto ring = a.ctl_json({"ring"});
    return ring.is_object() && !ring["successors"].empty() ? ring["successors"][0]["node_id"].get<std::string>()
                                                           : std::string();
  };
  bool joined = false;
  for (int i = 0; i < 120 && !joined; ++i) {
    joined = successor_of_a() == b_id;
    if (!joined) std::this_thread::sleep_for(250ms);
  }
  CHECK(joined);

  // No secret: the handshake fails on a's side, which says why.
  TestDaemon outsider(dir.path(), "c", {"--bootstrap", listen});
  REQUIRE(outsider.start());
  const std::string c_id = outsider.status_json()["node_id"].get<std::string>();
  const std::string refusal = "has no proof of this pool's secret (--pool-secret-file)";
  bool logged = false;
  for (int i = 0; i < 120 && !logged; ++i) {
    logged = a.log().find("node " + c_id.substr(0, 8) + " " + refusal) != std::string::npos;
    if (!logged) std::this_thread::sleep_for(250ms);
  }
  CHECK(logged);
  CHECK_THAT(a.log(), Catch::Contains("refused a peer connection from 127.0.0.1:"));
  std::this_thread::sleep_for(2s);
  CHECK(successor_of_a() == b_id);
  const auto c_ring = outsider.ctl_json({"ring"});
  REQUIRE(c_ring.is_object());
  for (const auto& successor : c_ring["successors"]) CHECK(successor["node_id"] != a_status["node_id"]);
  CHECK(outsider.stop().exited_with(0));
  CHECK(b.stop().exited_with(0));
  CHECK(a.stop().exited_with(0));
}

TEST_CASE("a pool secret file others can read stops the daemon with one clear line", "[integration]") {
  TempDir dir;
  const auto secret = dir.path() / "pool.secret";
  { std::ofstream(secret) << "9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c\n"; }
  ::chmod(secret.c_str(), 0644);
  TestDaemon daemon(dir.path(), "a", {"--pool-secret-file", secret.string()});
  daemon.spawn();
  const auto status = daemon.process().wait_for(30s);
  REQUIRE(status);
  CHECK(status->exited_with(1));
  CHECK_THAT(daemon.log(), Catch::Contains("p2pd: error: pool secret file " + secret.string() +
                                           " is accessible by others (mode 644); run: chmod 640"));
}

TEST_CASE("a peer calling past --peer-call-rate is refused, then banned and cut off", "[integration]") {
  TempDir dir;
  TestDaemon daemon(dir.path(), "a", {"--peer-call-rate", "10"});
  REQUIRE(daemon.start());
  const std::string listen = daemon.status_json()["listen"].get<std::string>();
  auto transport = p2pd::test::make_transport();
  const std::string self(transport->self().bytes().begin(), transport->self().bytes().end());
  auto stub = p2pd::proto::Peer::NewStub(p2pd::test::secure_channel(*transport, listen));
  std::size_t answered = 0;
  std::size_t over_rate = 0;
  std::size_t cut_off = 0;
  std::string over_rate_message;
  // Far faster than 10 a second: the first 20 (the burst) are answered, then
  // about 10 a second; twenty seconds' worth of refusals (200) ban the
  // address.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 2000 && cut_off == 0; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    p2pd::proto::PingRequest request;
    request.set_node_id(self);
    p2pd::proto::PingReply reply;
    const auto status = stub->Ping(&context, request, &reply);
    if (status.ok()) {
      ++answered;
    } else if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++over_rate;
      over_rate_message = status.error_message();
    } else {
      ++cut_off;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO("answered " << answered << ", over the rate " << over_rate << ", cut off " << cut_off << " in " << seconds
                   << " s");
  CHECK(answered >= 20);
  CHECK(static_cast<double>(answered) <= 20 + 10 * seconds + 2);
  CHECK(over_rate >= 195);
  CHECK_THAT(over_rate_message,
             Catch::Contains("more than 10 calls a second from node " + transport->self().short_hex()));
  CHECK(cut_off >= 1);
  const std::string log = daemon.log();
  CHECK_THAT(log, Catch::Contains("node " + transport->self().short_hex() +
                                  " at 127.0.0.1 calls faster than 10 a second: its calls are refused"));
  CHECK_THAT(log, Catch::Contains("banned 127.0.0.1 for 600 s: calls past its rate, again and again"));
  CHECK(daemon.ctl({"status"}).status.exited_with(0));
  CHECK(daemon.stop().exited_with(0));
}
