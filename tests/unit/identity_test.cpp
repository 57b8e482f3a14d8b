#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <fstream>

#include "common/atomic_file.hpp"
#include "daemon/node/identity.hpp"
#include "daemon/node/state_dir.hpp"
#include "tests/support/temp_dir.hpp"

using namespace p2pd;
using namespace p2pd::node;

TEST_CASE("the identity is created once and reused", "[unit][identity]") {
  test::TempDir dir;
  auto first = load_or_create_identity(dir.path());
  REQUIRE(first);
  CHECK(first->created);
  CHECK(first->public_key.size() == 32);
  CHECK(first->id == NodeId::hash_of(first->public_key));
  struct stat st {};
  REQUIRE(::stat((dir.path() / kNodeKeyFile).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  auto second = load_or_create_identity(dir.path());
  REQUIRE(second);
  CHECK_FALSE(second->created);
  CHECK(second->id == first->id);

  test::TempDir other;
  CHECK(load_or_create_identity(other.path())->id != first->id);
}

TEST_CASE("a corrupt key file is an error and is never silently replaced", "[unit][identity]") {
  test::TempDir dir;
  const auto file = dir.path() / kNodeKeyFile;
  for (const std::string& junk : {std::string("not a key"), std::string(),
                                  std::string("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")}) {
    std::ofstream(file, std::ios::trunc) << junk;
    ::chmod(file.c_str(), 0600);
    auto identity = load_or_create_identity(dir.path());
    REQUIRE_FALSE(identity);
    CHECK(identity.error().code == ErrorCode::corrupt);
    CHECK_THAT(identity.error().message, Catch::Contains("move it away"));
    CHECK(*read_small_file(file, 1 << 20) == junk);  // untouched
  }
}

TEST_CASE("a node key readable by others is refused", "[unit][identity]") {
  test::TempDir dir;
  REQUIRE(load_or_create_identity(dir.path()));
  const auto file = dir.path() / kNodeKeyFile;
  ::chmod(file.c_str(), 0644);
  auto identity = load_or_create_identity(dir.path());
  REQUIRE_FALSE(identity);
  CHECK(identity.error().code == ErrorCode::permission_denied);
  CHECK_THAT(identity.error().message, Catch::Contains("mode 644") && Catch::Contains("chmod 600"));
  ::chmod(file.c_str(), 0600);
  CHECK(load_or_create_identity(dir.path()));
}

TEST_CASE("one daemon per state dir", "[unit][state_dir]") {
  test::TempDir dir;
  const auto state = dir.path() / "state";
  {
    auto lock = StateDirLock::acquire(state);
    REQUIRE(lock);
    struct stat st {};
    REQUIRE(::stat(state.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    auto second = StateDirLock::acquire(state);
    REQUIRE_FALSE(second);
    CHECK_THAT(second.error().message, Catch::Contains("in use by another p2pd (pid"));
  }
  CHECK(StateDirLock::acquire(state));  // released with the first
}
