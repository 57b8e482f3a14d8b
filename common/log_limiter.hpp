#pragma once
// Bounds how many lines one source of log noise may write: what a stranger
// can trigger at will (a refused connection, a malformed message) must not
// be able to fill the journal. Within each window the first `burst` lines
// are written; the rest are counted, and the next line written says how
// many were held back.

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>

namespace p2pd::log {

class Limiter {
 public:
  Limiter(std::size_t burst, std::chrono::steady_clock::duration window) : m_burst(burst), m_window(window) {}

  // Whether a line may be written now; if so, how many lines were held back
  // since the last one written (0 for none). Thread-safe.
  std::optional<std::size_t> admit(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

 private:
  std::mutex m_mutex;
  const std::size_t m_burst;
  const std::chrono::steady_clock::duration m_window;
  std::chrono::steady_clock::time_point m_window_start{};
  std::size_t m_written_in_window = 0;
  std::size_t m_held_back = 0;
  bool m_started = false;
};

// What a line admitted after `held_back` others were held back adds to
// itself: "" for none, else " (N more like it held back)".
std::string held_back_note(std::size_t held_back);

}  // namespace p2pd::log
