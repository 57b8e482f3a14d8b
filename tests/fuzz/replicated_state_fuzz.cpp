// Fuzz target: what becomes replicated state. Raft commits whatever a
// leader proposed, and every node applies it: a job table command that
// could crash apply(), or leave a table its snapshot cannot restore, would
// take the whole pool down at once. The first byte picks the input:
//   0: a run of job table commands, each u16 little-endian length + bytes,
//      applied to one table; after each accepted one the table's snapshot
//      restores to an equal table;
//   1: a job table snapshot (from a leader's InstallSnapshot);
//   2: a matrix manifest (from the ring's blob store);
//   3: a Raft voter list (from a committed configuration entry).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/raft/messages.hpp"
#include "daemon/sched/job_table.hpp"
#include "daemon/store/matrix_manifest.hpp"
#include "tests/fuzz/fuzz_target.hpp"

#include <google/protobuf/stubs/logging.h>

namespace {

using namespace p2pd;

void check_snapshot_round_trip(const sched::JobTable& table) {
  const std::string snapshot = table.snapshot();
  auto restored = sched::JobTable::restore(snapshot);
  FUZZ_CHECK(restored.has_value());
  FUZZ_CHECK(restored->size() == table.size());
  FUZZ_CHECK(restored->shard_count() == table.shard_count());
  FUZZ_CHECK(restored->snapshot() == snapshot);
  const auto jobs = table.jobs();
  const auto restored_jobs = restored->jobs();
  FUZZ_CHECK(jobs.size() == restored_jobs.size());
  for (std::size_t i = 0; i < jobs.size(); ++i) FUZZ_CHECK(*jobs[i] == *restored_jobs[i]);
}

void apply_commands(std::string_view bytes) {
  sched::JobTable table;
  // Bounded per input: libFuzzer's inputs are small anyway.
  for (int applied = 0; bytes.size() >= 2 && applied < 64; ++applied) {
    const std::size_t length = static_cast<std::uint8_t>(bytes[0]) | (static_cast<std::uint8_t>(bytes[1]) << 8);
    bytes.remove_prefix(2);
    const std::string_view command = bytes.substr(0, length);
    bytes.remove_prefix(command.size());
    const std::string before = table.snapshot();
    if (table.apply(command)) {
      check_snapshot_round_trip(table);
    } else {
      FUZZ_CHECK(table.snapshot() == before);  // a refused command changes nothing
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // libprotobuf logs every string field that is not UTF-8.
  [[maybe_unused]] static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: apply_commands(bytes); break;
    case 1:
      if (auto table = sched::JobTable::restore(bytes)) check_snapshot_round_trip(*table);
      break;
    case 2:
      if (auto manifest = store::decode_manifest(bytes)) {
        FUZZ_CHECK(manifest->rows > 0 && manifest->cols > 0 && manifest->chunk_rows > 0);
        FUZZ_CHECK(manifest->first_row(manifest->chunks.size() - 1) < manifest->rows);
        std::uint64_t rows = 0;
        for (std::size_t i = 0; i < manifest->chunks.size(); ++i) rows += manifest->rows_in(i);
        FUZZ_CHECK(rows == manifest->rows);
        auto again = store::decode_manifest(store::encode_manifest(*manifest));
        FUZZ_CHECK(again.has_value());
        FUZZ_CHECK(again->rows == manifest->rows && again->cols == manifest->cols);
        FUZZ_CHECK(again->chunk_rows == manifest->chunk_rows && again->chunks == manifest->chunks);
      }
      break;
    case 3:
      if (auto voters = raft::decode_voters(std::string(bytes))) {
        FUZZ_CHECK(!voters->empty());
        FUZZ_CHECK(raft::encode_voters(*voters) == bytes);
      }
      break;
  }
  return 0;
}
