#pragma once
// Raft's durable state in the state dir (thesis §3.8, §11.1): the hard
// state (term, vote), replaced atomically, and the log, an append-only file
// of checksummed records. Everything save() is given is fsynced before it
// returns, so the driver may then send the messages that depend on it.
//
// Record: u32 payload length, u32 CRC-32 of the payload, payload = u64 term,
// u64 index, u8 kind, data (little endian). On open, the first record that
// is short, oversized, fails its checksum or breaks the index sequence ends
// the log: the file is truncated there and a warning says so. A torn write
// from a crash is never trusted, and never silently kept.

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

class RaftStorage {
 public:
  struct Loaded {
    HardState hard_state;
    std::vector<Entry> log;
    std::optional<std::string> warning;  // set when a bad tail was cut off
  };

  // Opens (creating) `dir`/hard_state and `dir`/log, and loads them.
  static Result<std::unique_ptr<RaftStorage>> open(const std::filesystem::path& dir);
  ~RaftStorage();
  RaftStorage(const RaftStorage&) = delete;
  RaftStorage& operator=(const RaftStorage&) = delete;

  [[nodiscard]] const Loaded& loaded() const { return m_loaded; }
  // Applies a Ready's durable part: truncation, appended entries, hard state.
  Result<void> save(const Ready& ready);

 private:
  RaftStorage() = default;
  Result<void> load();
  Result<void> truncate_log(Index from);
  Result<void> append(const std::vector<Entry>& entries);

  std::filesystem::path m_dir;
  int m_log_fd = -1;
  std::vector<std::uint64_t> m_offsets;  // file offset of entry i+1's record
  std::uint64_t m_end = 0;               // file offset past the last record
  Loaded m_loaded;
};

}  // namespace p2pd::raft
