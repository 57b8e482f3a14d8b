#include "common/log.hpp"

#include "common/one_line.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>

namespace p2pd::log {
namespace {

std::atomic<Level> g_level{Level::info};
std::atomic<Format> g_format{Format::text};
std::atomic<bool> g_journal{false};
std::mutex g_write_mutex;

// sd-daemon(3) priorities: 7 debug, 6 info, 4 warning, 3 err.
int syslog_priority(Level level) {
  switch (level) {
    case Level::trace:
    case Level::debug: return 7;
    case Level::info: return 6;
    case Level::warn: return 4;
    case Level::error: return 3;
  }
  return 6;
}

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  return dev == static_cast<unsigned long long>(st.st_dev) && ino == static_cast<unsigned long long>(st.st_ino);
}

// The length of the well-formed UTF-8 sequence at text[i] (RFC 3629 §4:
// no overlong forms, no surrogates, nothing past U+10FFFF), or 0.
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // the second byte's range
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (i + length > text.size() || byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

}  // namespace

std::string json_string_body(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x20 || c == 0x7F) {
        out += fmt::format("\\u{:04x}", c);
      } else {
        out += static_cast<char>(c);
      }
      ++i;
    } else if (const std::size_t length = utf8_sequence_length(text, i); length != 0) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out += "\\ufffd";  // not UTF-8 (a peer's bytes, say): a shipper would reject the record
      ++i;
    }
  }
  return out;
}

std::optional<Format> parse_format(std::string_view text) {
  if (text == "text") return Format::text;
  if (text == "json") return Format::json;
  return std::nullopt;
}

std::string_view to_string(Format format) {
  return format == Format::json ? "json" : "text";
}

void set_format(Format format) {
  g_format.store(format, std::memory_order_relaxed);
}

std::optional<Level> parse_level(std::string_view text) {
  if (text == "trace") return Level::trace;
  if (text == "debug") return Level::debug;
  if (text == "info") return Level::info;
  if (text == "warn" || text == "warning") return Level::warn;
  if (text == "error") return Level::error;
  return std::nullopt;
}

std::string_view to_string(Level level) {
  switch (level) {
    case Level::trace: return "trace";
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "?";
}

std::string_view to_string(Category category) {
  switch (category) {
    case Category::node: return "node";
    case Category::control: return "control";
    case Category::net: return "net";
    case Category::exec: return "exec";
    case Category::config: return "config";
    case Category::chord: return "chord";
    case Category::raft: return "raft";
    case Category::sched: return "sched";
    case Category::store: return "store";
    case Category::nat: return "nat";
    case Category::trace: return "trace";
  }
  return "?";
}

void set_level(Level level) {
  g_level.store(level, std::memory_order_relaxed);
}
Level level() {
  return g_level.load(std::memory_order_relaxed);
}
bool enabled(Level l) {
  return l >= g_level.load(std::memory_order_relaxed);
}

void init_from_environment(std::string_view /*program*/) {
  g_journal.store(stderr_is_journal());
}

void write(Level level, Category category, std::string_view raw_message) {
  const std::string message = one_line(raw_message);
  const bool journal = g_journal.load(std::memory_order_relaxed);
  auto timestamp = [] {
    const auto now = std::chrono::system_clock::now();
    const auto secs = std::chrono::system_clock::to_time_t(now);
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  };
  std::string line;
  if (g_format.load(std::memory_order_relaxed) == Format::json) {
    // A shipper parses the time from the record, so it stays even under
    // journald; the priority prefix keeps the journal's levels right.
    line = fmt::format("{}{{\"time\":\"{}\",\"level\":\"{}\",\"category\":\"{}\",\"message\":\"{}\"}}\n",
                       journal ? fmt::format("<{}>", syslog_priority(level)) : std::string(), timestamp(),
                       to_string(level), to_string(category), json_string_body(message));
  } else if (journal) {
    line = fmt::format("<{}>{}: {}\n", syslog_priority(level), to_string(category), message);
  } else {
    line = fmt::format("{} {:<5} {}: {}\n", timestamp(), to_string(level), to_string(category), message);
  }
  std::lock_guard lock(g_write_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace p2pd::log
