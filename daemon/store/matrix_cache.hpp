#pragma once
// Whole matrices this node has in memory, by manifest id: the hand-off
// between the parts of one node that touch the same matrix one after
// another (DESIGN.md, "Data flow of a job"). The submission assembles A and
// B while it stores their chunks; the local worker then reads its rows of A
// and all of B without copying, stores its block of C and leaves C here;
// the leader verifies from here and the client's result is read from here.
// Without it each of those steps read the chunks back and copied them into
// a matrix of its own: four copies of every matrix for a one-peer job.
//
// - The manifest id names the content (the chunks' hashes), so an entry is
//   exactly the stored matrix; only the code that hashed its chunks (or
//   checked them on fetch) inserts it.
// - Bounded: past `capacity_bytes` the least recently used entries go. An
//   entry in use elsewhere stays alive through its shared pointer until
//   that use ends; the cache only stops handing it out.
// - Held only while a job uses it: an entry unused for a while (drop_idle)
//   goes, so an idle daemon holds no matrices.
// - Thread-safe.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common/float_buffer.hpp"
#include "daemon/store/blob_id.hpp"
#include "daemon/store/matrix_manifest.hpp"

namespace p2pd::store {

struct CachedMatrix {
  MatrixManifest manifest;
  std::shared_ptr<const FloatBuffer> values;  // manifest.rows x manifest.cols, row-major
};

struct MatrixCacheStats {
  std::size_t matrices = 0;
  std::uint64_t bytes = 0;
  std::uint64_t hits = 0;
};

class MatrixCache {
 public:
  explicit MatrixCache(std::uint64_t capacity_bytes) : m_capacity(capacity_bytes) {}

  // Whether a matrix of `bytes` may be cached at all (so worth assembling).
  [[nodiscard]] bool fits(std::uint64_t bytes) const { return bytes <= m_capacity; }
  // Keeps `matrix` under `manifest_id`; ignored when it does not fit or its
  // values do not match its manifest's shape.
  void insert(const BlobId& manifest_id, CachedMatrix matrix);
  // The matrix, or nullopt.
  [[nodiscard]] std::optional<CachedMatrix> find(const BlobId& manifest_id);
  [[nodiscard]] MatrixCacheStats stats() const;
  // Drops one entry, if held (its job is over).
  void drop(const BlobId& manifest_id);
  // Drops the entries not used for `idle`.
  void drop_idle(std::chrono::steady_clock::duration idle);

 private:
  struct Entry {
    CachedMatrix matrix;
    std::uint64_t last_used = 0;
    std::chrono::steady_clock::time_point used_at;
  };
  void erase(std::map<BlobId, Entry>::iterator it);
  // Under the lock: makes room; the evicted go to `evicted`, freed by the caller after unlocking.
  void evict_for(std::uint64_t incoming, std::vector<CachedMatrix>& evicted);

  std::uint64_t m_capacity;
  mutable std::mutex m_mutex;
  std::map<BlobId, Entry> m_entries;
  std::map<std::uint64_t, BlobId> m_lru;  // last_used -> id
  std::uint64_t m_bytes = 0;
  std::uint64_t m_clock = 0;
  std::uint64_t m_hits = 0;
};

}  // namespace p2pd::store
