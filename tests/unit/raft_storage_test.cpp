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
    ready.hard_state = HardState{7, vote, 4};
    ready.append = entries(7, 1, 5);
    ready.append[2].data = std::string("\0binary\xff", 8);
    REQUIRE(storage->save(ready));
  }
  auto storage = open_ok(dir.path() / "raft");
  CHECK(storage->loaded().hard_state == HardState{7, vote, 4});
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

namespace {
std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_all(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}
Snapshot snapshot_at(Index index, Term term) {
  return Snapshot{index, term, {NodeId::hash_of(std::string_view("voter"))}, fmt::format("state@{}", index)};
}
}  // namespace

TEST_CASE("raft storage: a snapshot replaces the entries it covers and the rest stays", "[unit][raft]") {
  TempDir dir;
  {
    auto storage = open_ok(dir.path());
    Ready ready;
    ready.append = entries(2, 1, 10);
    REQUIRE(storage->save(ready));
    Ready compacted;
    compacted.snapshot = snapshot_at(6, 2);
    REQUIRE(storage->save(compacted));
    Ready more;
    more.append = entries(3, 11, 12);
    REQUIRE(storage->save(more));
  }
  auto storage = open_ok(dir.path());
  CHECK(storage->loaded().snapshot == snapshot_at(6, 2));
  REQUIRE(storage->loaded().log.size() == 6);
  CHECK(storage->loaded().log.front().index == 7);
  CHECK(storage->loaded().log.back() == entry(3, 12));
  CHECK_FALSE(storage->loaded().warning);
  // The file holds only what the snapshot does not cover.
  CHECK(read_all(dir.path() / "log").find("entry 6") == std::string::npos);
}

TEST_CASE("raft storage: a leader's snapshot that disagrees with the log replaces all of it", "[unit][raft]") {
  TempDir dir;
  {
    auto storage = open_ok(dir.path());
    Ready ready;
    ready.append = entries(1, 1, 8);
    REQUIRE(storage->save(ready));
    Ready installed;
    installed.snapshot = snapshot_at(20, 4);
    installed.restore_snapshot = true;
    installed.truncate_from = 21;
    REQUIRE(storage->save(installed));
    Ready next;
    next.append = entries(4, 21, 22);
    REQUIRE(storage->save(next));
  }
  auto storage = open_ok(dir.path());
  CHECK(storage->loaded().snapshot.index == 20);
  REQUIRE(storage->loaded().log.size() == 2);
  CHECK(storage->loaded().log.front().index == 21);
}

TEST_CASE("raft storage: a crash between writing a snapshot and cutting the log is recovered", "[unit][raft]") {
  TempDir dir;
  std::string old_log;
  {
    auto storage = open_ok(dir.path());
    Ready ready;
    ready.append = entries(2, 1, 10);
    REQUIRE(storage->save(ready));
    old_log = read_all(dir.path() / "log");
    Ready compacted;
    compacted.snapshot = snapshot_at(6, 2);
    REQUIRE(storage->save(compacted));
  }
  SECTION("the covered records are skipped") {
    write_all(dir.path() / "log", old_log);  // as if the rewrite never happened
    auto storage = open_ok(dir.path());
    REQUIRE(storage->loaded().log.size() == 4);
    CHECK(storage->loaded().log.front().index == 7);
    CHECK_FALSE(storage->loaded().warning);
  }
  SECTION("records that disagree with the snapshot are cut with a warning") {
    write_all(dir.path() / "snapshot", "");
    {
      auto storage = open_ok(dir.path() / "other");
      Ready installed;
      installed.snapshot = snapshot_at(6, 5);  // a different history at index 6
      REQUIRE(storage->save(installed));
    }
    std::filesystem::copy_file(dir.path() / "other" / "snapshot", dir.path() / "snapshot",
                               std::filesystem::copy_options::overwrite_existing);
    write_all(dir.path() / "log", old_log);
    auto storage = open_ok(dir.path());
    CHECK(storage->loaded().log.empty());
    REQUIRE(storage->loaded().warning);
    CHECK_THAT(*storage->loaded().warning, Catch::Contains("disagrees with the snapshot"));
  }
  SECTION("a damaged snapshot is refused") {
    auto bytes = read_all(dir.path() / "snapshot");
    bytes[10] = static_cast<char>(bytes[10] ^ 0x55);
    write_all(dir.path() / "snapshot", bytes);
    auto reopened = RaftStorage::open(dir.path());
    REQUIRE_FALSE(reopened);
    CHECK_THAT(reopened.error().message, Catch::Contains("damaged"));
  }
}
