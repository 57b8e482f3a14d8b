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

void ColumnTable::row(std::vector<std::string> cells) {
  cells.resize(m_header.size());
  m_rows.push_back(std::move(cells));
}

std::string ColumnTable::render() const {
  std::vector<std::size_t> widths(m_header.size());
  for (std::size_t c = 0; c < m_header.size(); ++c) widths[c] = m_header[c].size();
  for (const auto& cells : m_rows) {
    for (std::size_t c = 0; c < cells.size(); ++c) widths[c] = std::max(widths[c], cells[c].size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      if (c + 1 < cells.size()) {
        text += fmt::format("{:<{}}  ", cells[c], widths[c]);
      } else {
        text += cells[c];
      }
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text + "\n";
  };
  line(m_header);
  for (const auto& cells : m_rows) line(cells);
  return out;
}

std::string short_id(std::string_view id) {
  constexpr std::size_t kShortIdDigits = 12;
  return std::string(id.substr(0, kShortIdDigits));
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
