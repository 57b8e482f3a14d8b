// Fuzz target: Raft's files in the state dir (daemon/raft/storage), as a
// crash, a full disk or a careless hand may leave them. The first byte
// picks the file the rest becomes (0: log, 1: hard_state, 2: snapshot);
// then the directory is opened. Whatever it holds, opening must not crash;
// what it accepts is a log of consecutive entries after the snapshot, and
// opening it again (after a damaged tail was cut off) loads the same state
// without a warning.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "daemon/raft/storage.hpp"
#include "tests/fuzz/fuzz_target.hpp"

namespace {

// One directory for the whole run, emptied before each input (tmpfs when
// there is one: open() fsyncs what it truncates).
const std::filesystem::path& state_dir() {
  static const std::filesystem::path dir = [] {
    const char* shm = "/dev/shm";
    std::string pattern =
        (std::filesystem::is_directory(shm) ? std::string(shm) : std::filesystem::temp_directory_path().string()) +
        "/p2pd-raft-fuzz.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    return std::filesystem::path(pattern);
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace p2pd::raft;
  if (size == 0) return 0;
  const auto& dir = state_dir();
  for (const char* name : {"log", "hard_state", "snapshot"}) std::filesystem::remove(dir / name);
  static const char* const kFiles[] = {"log", "hard_state", "snapshot"};
  {
    std::ofstream out(dir / kFiles[data[0] % 3], std::ios::binary);
    out.write(reinterpret_cast<const char*>(data) + 1, static_cast<std::streamsize>(size - 1));
  }
  auto storage = RaftStorage::open(dir);
  if (!storage) return 0;
  const auto first = (*storage)->loaded();
  for (std::size_t i = 0; i < first.log.size(); ++i) {
    FUZZ_CHECK(first.log[i].index == first.snapshot.index + 1 + i);
    if (i > 0) FUZZ_CHECK(first.log[i].term >= first.log[i - 1].term);
  }
  storage->reset();
  auto again = RaftStorage::open(dir);
  FUZZ_CHECK(again.has_value());
  const auto& second = (*again)->loaded();
  FUZZ_CHECK(!second.warning.has_value());
  FUZZ_CHECK(second.hard_state == first.hard_state);
  FUZZ_CHECK(second.snapshot == first.snapshot);
  FUZZ_CHECK(second.log == first.log);
  return 0;
}
