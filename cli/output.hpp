#pragma once
// Text output helpers for people: aligned key/value and column tables,
// durations, short ids.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/one_line.hpp"  // is_valid_utf8

namespace p2pd::cli {

class TextTable {
 public:
  void row(std::string key, std::string value) { m_rows.emplace_back(std::move(key), std::move(value)); }
  [[nodiscard]] std::string render() const;

 private:
  std::vector<std::pair<std::string, std::string>> m_rows;
};

// Columns under a header line, two spaces apart; the last column is not padded.
class ColumnTable {
 public:
  explicit ColumnTable(std::vector<std::string> header) : m_header(std::move(header)) {}
  // Missing cells are empty, extra ones are dropped.
  void row(std::vector<std::string> cells);
  [[nodiscard]] std::string render() const;

 private:
  std::vector<std::string> m_header;
  std::vector<std::vector<std::string>> m_rows;
};

// The first 12 hex digits of a node id or key: enough to tell nodes apart
// in text; JSON always carries the full id.
std::string short_id(std::string_view id);

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
