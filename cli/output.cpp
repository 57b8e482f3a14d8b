#include "cli/output.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace p2pd::cli {

std::string TextTable::render() const {
  std::size_t width = 0;
  for (const auto& [key, value] : m_rows) width = std::max(width, key.size());
  std::string out;
  for (const auto& [key, value] : m_rows) out += fmt::format("{:<{}}  {}\n", key, width, value);
  return out;
}

std::string format_duration(std::uint64_t seconds) {
  const std::uint64_t days = seconds / 86400, hours = seconds / 3600 % 24, minutes = seconds / 60 % 60,
                      secs = seconds % 60;
  if (days > 0) return fmt::format("{}d {:02}h", days, hours);
  if (seconds >= 3600) return fmt::format("{}h {:02}m", seconds / 3600, minutes);
  if (seconds >= 60) return fmt::format("{}m {:02}s", seconds / 60, secs);
  return fmt::format("{}s", secs);
}

}  // namespace p2pd::cli
