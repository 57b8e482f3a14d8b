// Raft's durable state: what is saved comes back, and a damaged log tail is
// cut off with a warning instead of being trusted.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include "daemon/raft/storage.hpp"
#include "tests/support/temp_dir.hpp"

using namespace p2pd;
using namespace p2pd::raft;
using p2pd::test::TempDir;

namespace {

Entry entry(Term term, Index index, std::string data = {}) {
  return Entry{term, index, Entry::Kind::command, data.empty() ? fmt::format("entry {}", index) : std::move(data)};
}

std::unique_ptr<RaftStorage> open_ok(const std::filesystem::path& dir) {
  auto storage = RaftStorage::open(dir);
  INFO((storage ? "" : storage.error().message));
  REQUIRE(storage);
  return std::move(*storage);
}

std::vector<Entry> entries(Term term, Index from, Index to) {
  std::vector<Entry> out;
  for (Index i = from; i <= to; ++i) out.push_back(entry(term, i));
  return out;
}

}  // namespace

TEST_CASE("raft storage: hard state and log survive a reopen", "[unit][raft]") {
  TempDir dir;
  const NodeId vote = NodeId::hash_of(std::string_view("candidate"));
  {
    auto storage = open_ok(dir.path() / "raft");
    CHECK(storage->loaded().log.empty());
    CHECK(storage->loaded().hard_state == HardState{});
    Ready ready;
    ready.hard_state = HardState{7, vote};
    ready.append = entries(7, 1, 5);
    ready.append[2].data = std::string("\0binary\xff", 8);
    REQUIRE(storage->save(ready));
  }
  auto storage = open_ok(dir.path() / "raft");
  CHECK(storage->loaded().hard_state == HardState{7, vote});
  REQUIRE(storage->loaded().log.size() == 5);
  CHECK(storage->loaded().log[2].data == std::string("\0binary\xff", 8));
  CHECK_FALSE(storage->loaded().warning);
}

TEST_CASE("raft storage: a follower's replaced suffix is replaced on disk too", "[unit][raft]") {
  TempDir dir;
  {
    auto storage = open_ok(dir.path());
    Ready first;
    first.append = entries(1, 1, 10);
    REQUIRE(storage->save(first));
    Ready second;
    second.truncate_from = 4;
    second.append = entries(2, 4, 6);
    REQUIRE(storage->save(second));
  }
  auto storage = open_ok(dir.path());
  REQUIRE(storage->loaded().log.size() == 6);
  CHECK(storage->loaded().log[2].term == 1);
  CHECK(storage->loaded().log[3].term == 2);
  CHECK(storage->loaded().log[5].index == 6);
}

TEST_CASE("raft storage: a torn or corrupt tail is cut off with a warning", "[unit][raft]") {
  TempDir dir;
  {
    auto storage = open_ok(dir.path());
    Ready ready;
    ready.append = entries(1, 1, 8);
    REQUIRE(storage->save(ready));
  }
  const auto log = dir.path() / "log";
  const auto full = std::filesystem::file_size(log);

  SECTION("a record cut short by a crash") {
    std::filesystem::resize_file(log, full - 3);
    auto storage = open_ok(dir.path());
    CHECK(storage->loaded().log.size() == 7);
    REQUIRE(storage->loaded().warning);
    CHECK_THAT(*storage->loaded().warning, Catch::Contains("torn"));
    CHECK(std::filesystem::file_size(log) < full - 3);  // the torn bytes are gone from disk
  }
  SECTION("a flipped byte in the middle") {
    const int fd = ::open(log.c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    char byte = 0;
    const off_t at = static_cast<off_t>(full / 2);
    REQUIRE(::pread(fd, &byte, 1, at) == 1);
    byte = static_cast<char>(byte ^ 0x5a);
    REQUIRE(::pwrite(fd, &byte, 1, at) == 1);
    ::close(fd);
    auto storage = open_ok(dir.path());
    CHECK(storage->loaded().log.size() < 8);
    REQUIRE(storage->loaded().warning);
    // What was kept is exactly what was written.
    for (std::size_t i = 0; i < storage->loaded().log.size(); ++i) CHECK(storage->loaded().log[i] == entry(1, i + 1));
  }
  SECTION("garbage appended after the last record") {
    std::ofstream(log, std::ios::app) << std::string(100, '\x7f');
    auto storage = open_ok(dir.path());
    CHECK(storage->loaded().log.size() == 8);
    CHECK(storage->loaded().warning);
    // And the log goes on from there.
    Ready more;
    more.append = {entry(2, 9)};
    REQUIRE(storage->save(more));
    CHECK(open_ok(dir.path())->loaded().log.size() == 9);
  }
}

TEST_CASE("raft storage: a damaged hard state is refused, not forgotten", "[unit][raft]") {
  TempDir dir;
  {
    auto storage = open_ok(dir.path());
    Ready ready;
    ready.hard_state = HardState{3, NodeId::hash_of(std::string_view("x"))};
    REQUIRE(storage->save(ready));
  }
  std::ofstream(dir.path() / "hard_state", std::ios::trunc) << "junk";
  auto reopened = RaftStorage::open(dir.path());
  REQUIRE_FALSE(reopened);
  CHECK_THAT(reopened.error().message, Catch::Contains("damaged"));
}
