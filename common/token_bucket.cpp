#include "common/token_bucket.hpp"

#include <algorithm>
#include <cmath>

namespace p2pd {

TokenBucket::TokenBucket(std::uint64_t rate_bytes_per_s, std::uint64_t burst_bytes, Clock::time_point now)
    : m_rate(rate_bytes_per_s),
      m_burst(std::max<std::uint64_t>(burst_bytes, 1)),
      m_tokens(static_cast<double>(m_burst)),
      m_last(now) {}

void TokenBucket::refill(Clock::time_point now) {
  if (now <= m_last) return;
  const double seconds = std::chrono::duration<double>(now - m_last).count();
  m_tokens = std::min(static_cast<double>(m_burst), m_tokens + seconds * static_cast<double>(m_rate));
  m_last = now;
}

std::size_t TokenBucket::take(std::size_t want, Clock::time_point now) {
  if (unlimited()) return want;
  refill(now);
  const auto whole = static_cast<std::size_t>(std::floor(m_tokens));
  const std::size_t granted = std::min(want, whole);
  m_tokens -= static_cast<double>(granted);
  return granted;
}

void TokenBucket::refund(std::size_t bytes) {
  if (unlimited()) return;
  m_tokens = std::min(static_cast<double>(m_burst), m_tokens + static_cast<double>(bytes));
}

TokenBucket::Clock::duration TokenBucket::wait_time(Clock::time_point now) const {
  if (unlimited()) return Clock::duration::zero();
  double tokens = m_tokens;
  if (now > m_last) {
    tokens += std::chrono::duration<double>(now - m_last).count() * static_cast<double>(m_rate);
  }
  if (tokens >= 1.0) return Clock::duration::zero();
  const double seconds = (1.0 - tokens) / static_cast<double>(m_rate);
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)) +
         std::chrono::microseconds(1);
}

}  // namespace p2pd
