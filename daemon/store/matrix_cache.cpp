#include "daemon/store/matrix_cache.hpp"

#include <vector>

namespace p2pd::store {

void MatrixCache::insert(const BlobId& manifest_id, CachedMatrix matrix) {
  if (matrix.values == nullptr || matrix.values->size() != matrix.manifest.rows * matrix.manifest.cols) return;
  const std::uint64_t bytes = matrix.values->capacity_bytes();
  if (!fits(bytes)) return;
  std::vector<CachedMatrix> evicted;  // freed outside the lock
  std::lock_guard lock(m_mutex);
  const auto now = std::chrono::steady_clock::now();
  if (auto it = m_entries.find(manifest_id); it != m_entries.end()) {
    m_lru.erase(it->second.last_used);
    it->second.last_used = ++m_clock;
    it->second.used_at = now;
    m_lru.emplace(it->second.last_used, manifest_id);
    return;
  }
  evict_for(bytes, evicted);
  auto entry = m_entries.emplace(manifest_id, Entry{std::move(matrix), ++m_clock, now}).first;
  try {
    m_lru.emplace(m_clock, manifest_id);
  } catch (const std::bad_alloc&) {
    m_entries.erase(entry);  // not cached, rather than cached half
    return;
  }
  m_bytes += bytes;
}

void MatrixCache::erase(std::map<BlobId, Entry>::iterator it) {
  m_bytes -= it->second.matrix.values->capacity_bytes();
  m_lru.erase(it->second.last_used);
  m_entries.erase(it);
}

void MatrixCache::evict_for(std::uint64_t incoming, std::vector<CachedMatrix>& evicted) {
  while (m_bytes + incoming > m_capacity && !m_lru.empty()) {
    auto oldest = m_entries.find(m_lru.begin()->second);
    evicted.push_back(oldest->second.matrix);
    erase(oldest);
  }
}

void MatrixCache::drop(const BlobId& manifest_id) {
  std::optional<CachedMatrix> dropped;  // freed outside the lock
  std::lock_guard lock(m_mutex);
  auto it = m_entries.find(manifest_id);
  if (it == m_entries.end()) return;
  dropped = it->second.matrix;
  erase(it);
}

void MatrixCache::drop_idle(std::chrono::steady_clock::duration idle) {
  std::vector<CachedMatrix> dropped;  // freed outside the lock
  std::lock_guard lock(m_mutex);
  const auto cutoff = std::chrono::steady_clock::now() - idle;
  for (auto it = m_entries.begin(); it != m_entries.end();) {
    auto current = it++;
    if (current->second.used_at > cutoff) continue;
    dropped.push_back(current->second.matrix);
    erase(current);
  }
}

std::optional<CachedMatrix> MatrixCache::find(const BlobId& manifest_id) {
  std::lock_guard lock(m_mutex);
  auto it = m_entries.find(manifest_id);
  if (it == m_entries.end()) return std::nullopt;
  m_lru.erase(it->second.last_used);
  it->second.last_used = ++m_clock;
  it->second.used_at = std::chrono::steady_clock::now();
  m_lru.emplace(it->second.last_used, manifest_id);
  ++m_hits;
  return it->second.matrix;
}

MatrixCacheStats MatrixCache::stats() const {
  std::lock_guard lock(m_mutex);
  return MatrixCacheStats{m_entries.size(), m_bytes, m_hits};
}

}  // namespace p2pd::store
