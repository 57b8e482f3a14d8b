#pragma once
// Raft's durable state in the state dir (thesis §3.8, §11.1): the hard
// state (term, vote, commit index) and the latest snapshot, each replaced
// atomically and checksummed, and the log, an append-only file of
// checksummed records holding the entries after the snapshot. Everything
// save() is given is fsynced before it returns, so the driver may then send
// the messages that depend on it.
//
// Record: u32 payload length, u32 CRC-32 of the payload, payload = u64 term,
// u64 index, u8 kind, data (little endian). On open, the first record that
// is short, oversized, fails its checksum or breaks the index sequence ends
// the log: the file is truncated there and a warning says so. A torn write
// from a crash is never trusted, and never silently kept. A new snapshot is
// written first and the log then rewritten without the entries it covers;
// a crash between the two leaves records the snapshot covers, skipped on
// open.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "daemon/raft/raft.hpp"

namespace p2pd::raft {

// The largest record accepted: bounds what a corrupt length field can make
// us allocate.
inline constexpr std::uint32_t kMaxRecordBytes = 8u << 20;
inline constexpr std::uint64_t kMaxSnapshotFileBytes = 512ull << 20;

class RaftStorage {
 public:
  struct Loaded {
    HardState hard_state;
    Snapshot snapshot;                   // index 0: none
    std::vector<Entry> log;              // the entries after the snapshot
    std::optional<std::string> warning;  // set when a bad tail was cut off
  };

  // Opens (creating) `dir`/hard_state and `dir`/log, and loads them.
  static Result<std::unique_ptr<RaftStorage>> open(const std::filesystem::path& dir);
  ~RaftStorage();
  RaftStorage(const RaftStorage&) = delete;
  RaftStorage& operator=(const RaftStorage&) = delete;

  [[nodiscard]] const Loaded& loaded() const { return m_loaded; }
  // Applies a Ready's durable part: snapshot, truncation, appended entries,
  // hard state, in that order.
  Result<void> save(const Ready& ready);

 private:
  RaftStorage() = default;
  Result<void> load();
  Result<void> load_snapshot();
  Result<void> save_snapshot(const Snapshot& snapshot);
  // Rewrites the log file without the records up to `index`.
  Result<void> drop_log_through(Index index);
  Result<void> truncate_log(Index from);
  Result<void> append(const std::vector<Entry>& entries);

  std::filesystem::path m_dir;
  int m_log_fd = -1;
  Index m_first_index = 1;               // the index of the log file's first record
  std::vector<std::uint64_t> m_offsets;  // file offset of entry m_first_index + i's record
  std::uint64_t m_end = 0;               // file offset past the last record
  Loaded m_loaded;
};

}  // namespace p2pd::raft
