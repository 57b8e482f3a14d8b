#pragma once
// A float array for job matrices: not zero-filled when allocated, and backed
// by transparent huge pages where the kernel offers them. A 4096x4096 matrix
// is 64 MiB, written in full right after allocation; zero-filling it first
// and taking 16384 page faults to do so cost more than copying it.
//
// Large blocks are recycled: a released one is kept (768 MiB at most) for
// the next buffer of about its size, and given back to the system once it
// has been idle for as long as the owner of the process decides
// (release_idle, which p2pd calls from its tick).

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <span>

namespace p2pd {

class FloatBuffer {
 public:
  FloatBuffer() = default;
  // Throws std::bad_alloc when the memory cannot be had.
  explicit FloatBuffer(std::size_t count);
  ~FloatBuffer();
  FloatBuffer(FloatBuffer&& other) noexcept;
  FloatBuffer& operator=(FloatBuffer&& other) noexcept;
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;

  [[nodiscard]] float* data() { return m_data; }
  [[nodiscard]] const float* data() const { return m_data; }
  [[nodiscard]] std::size_t size() const { return m_size; }
  [[nodiscard]] std::size_t size_bytes() const { return m_size * sizeof(float); }
  // The memory it holds (a large buffer's block may be somewhat larger).
  [[nodiscard]] std::size_t capacity_bytes() const { return std::max(m_capacity_bytes, size_bytes()); }
  [[nodiscard]] std::span<float> span() { return {m_data, m_size}; }
  [[nodiscard]] std::span<const float> span() const { return {m_data, m_size}; }
  // The bytes, for filling from a byte stream.
  [[nodiscard]] char* bytes() { return reinterpret_cast<char*>(m_data); }
  [[nodiscard]] const char* bytes() const { return reinterpret_cast<const char*>(m_data); }

  // Frees kept blocks released more than `idle` ago.
  static void release_idle(std::chrono::steady_clock::duration idle);
  // Bytes of released blocks kept for reuse now.
  static std::size_t kept_bytes();

 private:
  void release();

  float* m_data = nullptr;
  std::size_t m_size = 0;
  std::size_t m_capacity_bytes = 0;  // of the block, when from the pool's size class
};

}  // namespace p2pd
