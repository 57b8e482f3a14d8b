#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <fstream>

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
  auto inode = verify_control_socket(path);
  REQUIRE(inode);
  remove_control_socket(path, *inode + 1);  // not ours: kept
  CHECK(std::filesystem::exists(path));
  remove_control_socket(path, *inode);
  CHECK_FALSE(std::filesystem::exists(path));
  ::close(fd);
}
