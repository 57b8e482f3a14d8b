#pragma once
// The INI-style config file: "key = value" lines, '#' comments, no sections.
// Strict on purpose: an unknown key or a malformed line is an error naming
// the file and line, not a silently ignored setting.

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace p2pd::node {

struct ConfigEntry {
  std::string key;
  std::string value;
  std::size_t line = 0;
};

struct ConfigKeyRules {
  // True when `key` is an option the file may set.
  std::function<bool(const std::string&)> known;
  // True when `key` may appear on several lines (e.g. bootstrap).
  std::function<bool(const std::string&)> repeatable;
};

inline constexpr std::size_t kMaxConfigFileBytes = 1 << 20;

Result<std::vector<ConfigEntry>> parse_config_text(const std::string& text, const std::string& origin,
                                                   const ConfigKeyRules& rules);
Result<std::vector<ConfigEntry>> read_config_file(const std::filesystem::path& path, const ConfigKeyRules& rules);

}  // namespace p2pd::node
