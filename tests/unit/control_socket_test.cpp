#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <fstream>

#include "daemon/control/caller.hpp"
#include "daemon/control/control_socket.hpp"
#include "tests/support/temp_dir.hpp"

using namespace p2pd;
using namespace p2pd::control;

namespace {

// Binds a unix socket at `path`; listens when asked. Returns the fd.
int bind_unix(const std::filesystem::path& path, bool listening) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  if (listening) REQUIRE(::listen(fd, 4) == 0);
  return fd;
}

}  // namespace

TEST_CASE("a missing directory is created", "[unit][control_socket]") {
  test::TempDir dir;
  const auto path = dir.path() / "run" / "p2pd" / "p2pd.sock";
  REQUIRE(prepare_control_socket_path(path));
  struct stat st {};
  REQUIRE(::stat(path.parent_path().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == kControlDirMode);
}

TEST_CASE("a stale socket is replaced but a live one is not", "[unit][control_socket]") {
  test::TempDir dir;
  const auto path = dir.path() / "p2pd.sock";
  SECTION("stale: nobody listens") {
    const int fd = bind_unix(path, false);
    ::close(fd);
    REQUIRE(std::filesystem::exists(path));
    REQUIRE(prepare_control_socket_path(path));
    CHECK_FALSE(std::filesystem::exists(path));
  }
  SECTION("live: another daemon answers") {
    const int fd = bind_unix(path, true);
    auto prepared = prepare_control_socket_path(path);
    ::close(fd);
    REQUIRE_FALSE(prepared);
    CHECK_THAT(prepared.error().message, Catch::Contains("another p2pd is serving"));
    CHECK(std::filesystem::exists(path));
  }
}

TEST_CASE("a path that is not a socket is never deleted", "[unit][control_socket]") {
  test::TempDir dir;
  const auto path = dir.path() / "precious.txt";
  std::ofstream(path) << "user data";
  auto prepared = prepare_control_socket_path(path);
  REQUIRE_FALSE(prepared);
  CHECK_THAT(prepared.error().message, Catch::Contains("is not a socket"));
  CHECK(std::filesystem::exists(path));
}

TEST_CASE("a directory others may write to is refused", "[unit][control_socket]") {
  test::TempDir dir;
  const auto shared = dir.path() / "shared";
  std::filesystem::create_directory(shared);
  ::chmod(shared.c_str(), 0777);
  auto prepared = prepare_control_socket_path(shared / "p2pd.sock");
  REQUIRE_FALSE(prepared);
  CHECK_THAT(prepared.error().message, Catch::Contains("is writable by others (mode 777)"));
  ::chmod(shared.c_str(), 01777);  // sticky, like /tmp: others cannot replace our socket
  CHECK(prepare_control_socket_path(shared / "p2pd.sock"));
  if (::geteuid() == 0) {
    const auto foreign = dir.path() / "foreign";
    std::filesystem::create_directory(foreign);
    REQUIRE(::chown(foreign.c_str(), 65534, 65534) == 0);
    auto refused = prepare_control_socket_path(foreign / "p2pd.sock");
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error().message, Catch::Contains("belongs to uid 65534"));
  }
}

TEST_CASE("overlong socket paths are refused up front", "[unit][control_socket]") {
  const std::filesystem::path path = "/tmp/" + std::string(120, 'x') + ".sock";
  auto prepared = prepare_control_socket_path(path);
  REQUIRE_FALSE(prepared);
  CHECK_THAT(prepared.error().message, Catch::Contains("too long"));
}

TEST_CASE("a bound socket is accepted only with mode 0660", "[unit][control_socket]") {
  test::TempDir dir;
  const auto path = dir.path() / "p2pd.sock";
  const int fd = bind_unix(path, true);
  ::chmod(path.c_str(), 0666);
  auto wrong = verify_control_socket(path);
  REQUIRE_FALSE(wrong);
  CHECK_THAT(wrong.error().message, Catch::Contains("has mode 666, expected 660"));
  ::chmod(path.c_str(), 0660);
  auto bound = verify_control_socket(path);
  REQUIRE(bound);
  CHECK(bound->group == ::getegid());
  remove_control_socket(path, bound->inode + 1);  // not ours: kept
  CHECK(std::filesystem::exists(path));
  remove_control_socket(path, bound->inode);
  CHECK_FALSE(std::filesystem::exists(path));
  ::close(fd);
}

TEST_CASE("control callers: the kernel names the caller of a connection", "[unit][control]") {
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
  const auto caller = read_caller(pair[0]);
  ::close(pair[0]);
  ::close(pair[1]);
  REQUIRE(caller);
  CHECK(caller->pid == ::getpid());
  CHECK(caller->uid == ::geteuid());
  CHECK(caller->gid == ::getegid());
  CHECK_FALSE(caller->user.empty());
  CHECK(describe(*caller).find(std::to_string(caller->pid)) != std::string::npos);
  CHECK(user_name(0) == "root");
  CHECK(user_name(4000000000u) == "uid 4000000000");
  CHECK(group_name(4000000000u) == "gid 4000000000");
}

TEST_CASE("control callers: the owner, root and the socket's group may use it, nobody else", "[unit][control]") {
  constexpr uid_t kOwner = 1000;
  constexpr gid_t kGroup = 998;
  Caller caller;
  caller.uid = kOwner;
  caller.gid = 1000;
  CHECK(may_use_control(caller, kOwner, kGroup));
  caller.uid = 0;
  CHECK(may_use_control(caller, kOwner, kGroup));
  caller.uid = 1001;
  CHECK_FALSE(may_use_control(caller, kOwner, kGroup));
  caller.groups = {4, 24, 27};
  CHECK_FALSE(may_use_control(caller, kOwner, kGroup));
  caller.groups.push_back(kGroup);
  CHECK(may_use_control(caller, kOwner, kGroup));
  caller.groups.clear();
  caller.gid = kGroup;
  CHECK(may_use_control(caller, kOwner, kGroup));
}

TEST_CASE("control callers: found by gRPC's name for a connection handed over by descriptor", "[unit][control]") {
  CallerRegistry registry;
  Caller alice;
  alice.uid = 1000;
  alice.user = "alice";
  registry.remember(12, alice);
  REQUIRE(registry.find("fd:12"));
  CHECK(registry.find("fd:12")->user == "alice");
  Caller bob;
  bob.uid = 1001;
  bob.user = "bob";
  registry.remember(12, bob);  // the descriptor number reused by a new connection
  CHECK(registry.find("fd:12")->user == "bob");
  for (const auto* peer : {"fd:13", "fd:", "fd:12x", "fd:-1", "unix:/run/p2pd/p2pd.sock", "ipv4:127.0.0.1:1", "",
                           "fd:99999999999999999999"}) {
    INFO(peer);
    CHECK_FALSE(registry.find(peer));
  }
}
