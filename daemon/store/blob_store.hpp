#pragma once
// This node's blobs on disk, under STATE_DIR/blobs (DESIGN.md daemon/store):
// immutable, content-addressed, so a file is either the blob its name says
// or damage, and damage is found by hashing it.
//
// - Written to a temporary file and renamed into place: a reader never sees
//   a half-written blob. Not fsynced: a blob lost in a crash is fetched
//   again from its other holders, and a torn one fails its hash.
// - A blob written by this process was hashed on the way in; one found on
//   disk at start is hashed on its first read, and a file that does not
//   match its name is deleted and reported absent.
// - Bounded: past `capacity_bytes` the least recently used blobs are
//   deleted (they have other holders on the ring, or belong to jobs long
//   over).
// - The most recently written or read blobs are also kept in memory, up to
//   `memory_bytes`: a job's chunks are read again soon after they are
//   written (the worker reads its inputs, the leader verifies, the client
//   fetches the output), and a read from memory is no syscall and no hash.
//
// Thread-safe: gRPC threads, the io thread and worker threads all use it.
// The lock guards the index only; file reads and writes run outside it.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "daemon/store/blob_id.hpp"

namespace p2pd::store {

// No blob is larger: a chunk is at most 1 MiB and a manifest a few hundred
// KiB, and a blob must fit in one peer message.
inline constexpr std::size_t kMaxBlobBytes = std::size_t{2} << 20;

struct BlobStoreStats {
  std::size_t blobs = 0;
  std::uint64_t bytes = 0;
  std::uint64_t capacity_bytes = 0;
  std::uint64_t evicted = 0;
  std::uint64_t memory_bytes = 0;  // held in memory now
};

class BlobStore {
 public:
  // Creates `dir` if needed and indexes what is there (names only; the
  // contents are checked when read).
  static Result<std::unique_ptr<BlobStore>> open(const std::filesystem::path& dir, std::uint64_t capacity_bytes,
                                                 std::uint64_t memory_bytes = 0);

  // Stores `data` under `id`; corrupt when `data` does not hash to `id`.
  // Storing a blob already held is a no-op. The shared forms keep `data`
  // itself as the in-memory copy; the others copy it.
  Result<void> put(const BlobId& id, std::string_view data);
  Result<void> put(const BlobId& id, std::shared_ptr<const std::string> data);
  // Stores `data` under its own id (hashed once), which it returns.
  Result<BlobId> put(std::string_view data);
  Result<BlobId> put(std::shared_ptr<const std::string> data);
  // Stores bytes the caller keeps in memory itself (a chunk of a matrix in
  // the matrix cache): on disk only, no second copy in memory.
  Result<BlobId> put_on_disk(std::string_view data);
  // The blob, or nullopt when this node does not hold it (or held a damaged copy).
  Result<std::optional<std::string>> get(const BlobId& id);
  // The same without copying an in-memory blob: nullptr when not held.
  Result<std::shared_ptr<const std::string>> get_shared(const BlobId& id);
  [[nodiscard]] bool contains(const BlobId& id) const;
  [[nodiscard]] BlobStoreStats stats() const;

 private:
  struct Entry {
    std::uint64_t bytes = 0;
    std::uint64_t last_used = 0;  // a use counter, not a time: the LRU order
    bool verified = false;        // hashed by this process
  };
  BlobStore(std::filesystem::path dir, std::uint64_t capacity_bytes, std::uint64_t memory_bytes)
      : m_dir(std::move(dir)), m_capacity(capacity_bytes), m_memory_capacity(memory_bytes) {}
  // Writes `data`, already known to hash to `id`; `memory` (may be null)
  // is kept as its in-memory copy.
  Result<void> write(const BlobId& id, std::string_view data, std::shared_ptr<const std::string> memory);
  // Under the lock: keeps `data` in memory, dropping the oldest past the budget.
  void remember(const BlobId& id, std::shared_ptr<const std::string> data);
  [[nodiscard]] std::filesystem::path path_of(const BlobId& id) const;
  void index_existing();
  // Under the lock: marks `id` used now.
  void touch(const BlobId& id, Entry& entry);
  // Under the lock: forgets `id` (the caller deletes the file).
  void forget(const BlobId& id);
  // Under the lock: the blobs to delete to make room for `incoming` bytes.
  std::vector<BlobId> pick_evictions(std::uint64_t incoming, const BlobId& keep);

  std::filesystem::path m_dir;
  std::uint64_t m_capacity;
  mutable std::mutex m_mutex;
  std::map<BlobId, Entry> m_index;
  std::map<std::uint64_t, BlobId> m_lru;  // last_used -> id
  std::uint64_t m_bytes = 0;
  std::uint64_t m_clock = 0;
  std::uint64_t m_evicted = 0;
  std::uint64_t m_temp_counter = 0;
  // The in-memory copies: id -> (bytes, use counter), and the counter's order.
  std::uint64_t m_memory_capacity;
  std::uint64_t m_memory_bytes = 0;
  std::map<BlobId, std::pair<std::shared_ptr<const std::string>, std::uint64_t>> m_memory;
  std::map<std::uint64_t, BlobId> m_memory_lru;
};

}  // namespace p2pd::store
