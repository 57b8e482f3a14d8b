#include "daemon/node/config_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace p2pd::node {
namespace {

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return {};
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

}  // namespace

Result<std::vector<ConfigEntry>> parse_config_text(const std::string& text, const std::string& origin,
                                                   const ConfigKeyRules& rules) {
  if (text.find('\0') != std::string::npos) {
    return make_error(ErrorCode::invalid_argument, "{}: not a text file (contains NUL bytes)", origin);
  }
  std::vector<ConfigEntry> entries;
  std::map<std::string, std::size_t> first_line_of;
  std::istringstream in(text);
  std::string raw;
  std::size_t line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    if (const auto hash = raw.find('#'); hash != std::string::npos) raw.erase(hash);
    const std::string line = trim(raw);
    if (line.empty()) continue;
    if (line.front() == '[') {
      return make_error(ErrorCode::invalid_argument, "{}:{}: sections are not used; write 'key = value' lines", origin,
                        line_no);
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos) {
      return make_error(ErrorCode::invalid_argument, "{}:{}: expected 'key = value', got '{}'", origin, line_no,
                        line.substr(0, 60));
    }
    ConfigEntry entry{trim(line.substr(0, eq)), trim(line.substr(eq + 1)), line_no};
    if (entry.key.empty()) {
      return make_error(ErrorCode::invalid_argument, "{}:{}: missing key before '='", origin, line_no);
    }
    if (!rules.known(entry.key)) {
      return make_error(ErrorCode::invalid_argument, "{}:{}: unknown option '{}'", origin, line_no,
                        entry.key.substr(0, 60));
    }
    if (entry.value.empty()) {
      return make_error(ErrorCode::invalid_argument, "{}:{}: '{}' needs a value", origin, line_no, entry.key);
    }
    if (auto [it, inserted] = first_line_of.emplace(entry.key, line_no); !inserted && !rules.repeatable(entry.key)) {
      return make_error(ErrorCode::invalid_argument, "{}:{}: '{}' is set twice (first on line {})", origin, line_no,
                        entry.key, it->second);
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

Result<std::vector<ConfigEntry>> read_config_file(const std::filesystem::path& path, const ConfigKeyRules& rules) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return make_error(ErrorCode::invalid_argument, "config file {} is a directory", path.string());
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return make_error(ErrorCode::not_found, "cannot read config file {}: {}", path.string(), std::strerror(errno));
  }
  std::string text;
  text.resize(kMaxConfigFileBytes + 1);
  file.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (file.bad()) {
    return make_error(ErrorCode::io, "cannot read config file {}: {}", path.string(), std::strerror(errno));
  }
  text.resize(static_cast<std::size_t>(file.gcount()));
  if (text.size() > kMaxConfigFileBytes) {
    return make_error(ErrorCode::invalid_argument, "config file {} is larger than {} bytes", path.string(),
                      kMaxConfigFileBytes);
  }
  return parse_config_text(text, path.string(), rules);
}

}  // namespace p2pd::node
