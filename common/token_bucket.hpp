#pragma once
// A token bucket (RFC 2697's single-rate shape, one bucket): `rate` units
// (bytes, calls) a second flow on average, with bursts of up to `burst`.
// The relay's circuits share one for bytes (--relay-max-rate); the peer
// server keeps one per peer for calls (--peer-call-rate).
// Sans-IO: the caller passes the time.

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace p2pd {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  // rate 0: unlimited (take() grants everything asked).
  TokenBucket(std::uint64_t rate_bytes_per_s, std::uint64_t burst_bytes, Clock::time_point now);

  // Grants up to `want` bytes now (0 when the bucket is empty).
  std::size_t take(std::size_t want, Clock::time_point now);
  // Returns bytes taken and not used (a read shorter than its grant).
  void refund(std::size_t bytes);
  // How long until at least one byte may be taken.
  [[nodiscard]] Clock::duration wait_time(Clock::time_point now) const;

  [[nodiscard]] bool unlimited() const { return m_rate == 0; }

 private:
  void refill(Clock::time_point now);

  std::uint64_t m_rate;
  std::uint64_t m_burst;
  double m_tokens;
  Clock::time_point m_last;
};

}  // namespace p2pd
