#pragma once
// Text output helpers for people: aligned key/value tables, durations.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace p2pd::cli {

class TextTable {
 public:
  void row(std::string key, std::string value) { m_rows.emplace_back(std::move(key), std::move(value)); }
  [[nodiscard]] std::string render() const;

 private:
  std::vector<std::pair<std::string, std::string>> m_rows;
};

// 0s, 59s, 1m 02s, 3h 04m, 2d 03h
std::string format_duration(std::uint64_t seconds);

template <class Range>
std::string join(const Range& items, const std::string& separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

}  // namespace p2pd::cli
