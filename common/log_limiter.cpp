#include "common/log_limiter.hpp"

#include <utility>

namespace p2pd::log {

std::optional<std::size_t> Limiter::admit(std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(m_mutex);
  if (!m_started || now - m_window_start >= m_window) {
    m_started = true;
    m_window_start = now;
    m_written_in_window = 0;
  }
  if (m_written_in_window >= m_burst) {
    ++m_held_back;
    return std::nullopt;
  }
  ++m_written_in_window;
  return std::exchange(m_held_back, 0);
}

std::string held_back_note(std::size_t held_back) {
  return held_back == 0 ? std::string() : " (" + std::to_string(held_back) + " more like it held back)";
}

}  // namespace p2pd::log
