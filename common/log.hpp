#pragma once
// Process-wide logging by level and category (Bitcoin Core style). Lines go to
// stderr; under journald (JOURNAL_STREAM names our stderr) they carry an
// sd-daemon "<N>" priority prefix instead of a timestamp, so the journal keeps
// levels and does not show two timestamps.

#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace p2pd::log {

enum class Level { trace = 0, debug, info, warn, error };
// text: "TIME LEVEL category: message"; json: one object per line
// ({"time", "level", "category", "message"}) for log shippers.
enum class Format { text, json };
enum class Category { node, control, net, exec, config, chord, raft, sched, store, nat, trace };

std::optional<Level> parse_level(std::string_view text);
std::string_view to_string(Level level);
std::string_view to_string(Category category);

std::optional<Format> parse_format(std::string_view text);
std::string_view to_string(Format format);
void set_format(Format format);

void set_level(Level level);
Level level();
bool enabled(Level level);

// Decides the line format from the environment; call once at start-up.
void init_from_environment(std::string_view program);

void write(Level level, Category category, std::string_view message);

// `text` as the inside of a JSON string: quotes, backslashes and control
// characters escaped, bytes that are not UTF-8 replaced by U+FFFD.
std::string json_string_body(std::string_view text);

// For what an operator asked for and must see whatever the level (e.g. the
// result of a SIGHUP): written at info priority, never filtered.
template <class... Args>
void always(Category c, fmt::format_string<Args...> f, Args&&... args) {
  write(Level::info, c, fmt::format(f, std::forward<Args>(args)...));
}

template <class... Args>
void trace(Category c, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::trace)) write(Level::trace, c, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void debug(Category c, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::debug)) write(Level::debug, c, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void info(Category c, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::info)) write(Level::info, c, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warn(Category c, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::warn)) write(Level::warn, c, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(Category c, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::error)) write(Level::error, c, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace p2pd::log
