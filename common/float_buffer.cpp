#include "common/float_buffer.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <utility>

namespace p2pd {
namespace {

// The huge page size on x86-64 and arm64 (4 KiB granule); a buffer this
// large or larger is aligned to it so that the kernel can back it with huge
// pages (MADV_HUGEPAGE, honoured when THP is "madvise" or "always").
constexpr std::size_t kHugePage = std::size_t{2} << 20;

// Large blocks released lately, kept for the next buffer of about the same
// size. A fresh block costs a page fault and a zeroed page for every 2 MiB
// (4 KiB without huge pages) when first written: for a job's three 64 MiB
// matrices that was a sixth of the daemon's time. Jobs come in runs of
// similar shapes, so a block is usually taken again within a second.
class BlockPool {
 public:
  // A kept block of at least `bytes`, and its own size; {nullptr, 0} if none.
  std::pair<void*, std::size_t> take(std::size_t bytes) {
    std::lock_guard lock(m_mutex);
    // The smallest kept block that fits and wastes at most a quarter.
    auto it = m_free.lower_bound(bytes);
    if (it == m_free.end() || it->first > bytes + bytes / 4) return {nullptr, 0};
    const std::pair<void*, std::size_t> block{it->second.block, it->first};
    m_kept -= it->first;
    m_free.erase(it);
    return block;
  }

  // Keeps `block` (of `bytes`, from aligned_alloc) or frees it.
  void give(void* block, std::size_t bytes) {
    {
      std::lock_guard lock(m_mutex);
      if (m_kept + bytes <= kMaxKeptBytes) {
        try {
          m_free.emplace(bytes, Kept{block, std::chrono::steady_clock::now()});
          m_kept += bytes;
          return;
        } catch (const std::bad_alloc&) {
          // No memory for the bookkeeping: the block is freed instead (this
          // runs in a destructor and must not throw).
        }
      }
    }
    std::free(block);
  }

  void release_idle(std::chrono::steady_clock::duration idle) {
    std::multimap<std::size_t, Kept> old;
    {
      std::lock_guard lock(m_mutex);
      const auto cutoff = std::chrono::steady_clock::now() - idle;
      for (auto it = m_free.begin(); it != m_free.end();) {
        if (it->second.released > cutoff) {
          ++it;
          continue;
        }
        m_kept -= it->first;
        old.insert(m_free.extract(it++));
      }
    }
    for (auto& [bytes, kept] : old) std::free(kept.block);
  }

  std::size_t kept_bytes() {
    std::lock_guard lock(m_mutex);
    return m_kept;
  }

 private:
  // Three 8192x8192 matrices' worth.
  static constexpr std::size_t kMaxKeptBytes = std::size_t{768} << 20;
  struct Kept {
    void* block;
    std::chrono::steady_clock::time_point released;
  };
  std::mutex m_mutex;
  std::multimap<std::size_t, Kept> m_free;  // by size
  std::size_t m_kept = 0;
};

BlockPool& block_pool() {
  static BlockPool* pool = new BlockPool();  // never destroyed: buffers may outlive statics
  return *pool;
}

std::size_t rounded_bytes(std::size_t count) {
  const std::size_t bytes = count * sizeof(float);
  if (bytes / sizeof(float) != count || bytes > SIZE_MAX - kHugePage) throw std::bad_alloc();
  return bytes >= kHugePage ? (bytes + kHugePage - 1) / kHugePage * kHugePage : bytes;
}

}  // namespace

FloatBuffer::FloatBuffer(std::size_t count) : m_size(count) {
  if (count == 0) return;
  const std::size_t bytes = rounded_bytes(count);
  if (bytes < kHugePage) {
    m_data = static_cast<float*>(std::malloc(bytes));
    if (m_data == nullptr) throw std::bad_alloc();
    return;
  }
  if (auto [reused, reused_bytes] = block_pool().take(bytes); reused != nullptr) {
    m_data = static_cast<float*>(reused);
    m_capacity_bytes = reused_bytes;  // the block's own size, for giving it back
    return;
  }
  m_data = static_cast<float*>(std::aligned_alloc(kHugePage, bytes));
  if (m_data == nullptr) throw std::bad_alloc();
  m_capacity_bytes = bytes;
  // Advice only: without THP the buffer works the same, with small pages.
  (void)::madvise(m_data, bytes, MADV_HUGEPAGE);
}

FloatBuffer::~FloatBuffer() {
  release();
}

void FloatBuffer::release() {
  if (m_data == nullptr) return;
  if (m_capacity_bytes >= kHugePage) {
    block_pool().give(m_data, m_capacity_bytes);
  } else {
    std::free(m_data);
  }
  m_data = nullptr;
  m_size = 0;
  m_capacity_bytes = 0;
}

FloatBuffer::FloatBuffer(FloatBuffer&& other) noexcept
    : m_data(std::exchange(other.m_data, nullptr)),
      m_size(std::exchange(other.m_size, 0)),
      m_capacity_bytes(std::exchange(other.m_capacity_bytes, 0)) {}

FloatBuffer& FloatBuffer::operator=(FloatBuffer&& other) noexcept {
  if (this != &other) {
    release();
    m_data = std::exchange(other.m_data, nullptr);
    m_size = std::exchange(other.m_size, 0);
    m_capacity_bytes = std::exchange(other.m_capacity_bytes, 0);
  }
  return *this;
}

void FloatBuffer::release_idle(std::chrono::steady_clock::duration idle) {
  block_pool().release_idle(idle);
}

std::size_t FloatBuffer::kept_bytes() {
  return block_pool().kept_bytes();
}

}  // namespace p2pd
