#include "daemon/trace/recorder.hpp"

#include "daemon/trace/event_record.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>
#include <tuple>

#include "common/byte_codec.hpp"
#include "common/log.hpp"
#include "common/one_line.hpp"
#include "proto/trace.pb.h"

namespace p2pd::trace {
namespace {

constexpr std::size_t kHeaderBytes = 8;
// Written out once this much is buffered, even between flushes.
constexpr std::size_t kMaxBufferBytes = 64u << 10;

std::string encode(const TraceEvent& e) {
  TraceEventRecord record;
  to_record(e, record);
  std::string payload = record.SerializeAsString();
  std::string out;
  out.reserve(kHeaderBytes + payload.size());
  put_u32(out, static_cast<std::uint32_t>(payload.size()));
  put_u32(out, crc32_of(payload.data(), payload.size()));
  return out + payload;
}

std::optional<TraceEvent> decode(std::string_view payload) {
  TraceEventRecord record;
  if (!record.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) return std::nullopt;
  return from_record(record);
}

// The events of one segment's bytes, up to the first damaged record; the
// bytes that were whole.
std::size_t parse_segment(std::string_view bytes, const std::function<void(TraceEvent)>& each) {
  std::size_t at = 0;
  while (bytes.size() - at >= kHeaderBytes) {
    const std::uint32_t size = get_u32(bytes.data() + at);
    const std::uint32_t crc = get_u32(bytes.data() + at + 4);
    if (size > kMaxTraceRecordBytes || bytes.size() - at - kHeaderBytes < size) break;
    const std::string_view payload = bytes.substr(at + kHeaderBytes, size);
    if (crc32_of(payload.data(), payload.size()) != crc) break;
    // Whole (its checksum holds) but refused by validation: an event
    // written by an older version, say. Skipped, not taken for damage: the
    // records after it are good.
    if (auto event = decode(payload)) each(std::move(*event));
    at += kHeaderBytes + size;
  }
  return at;
}

Result<std::string> read_file(const std::filesystem::path& path, std::uint64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::string();
    return make_error(ErrorCode::io, "cannot open {}: {}", path.string(), std::strerror(errno));
  }
  std::string data;
  char buffer[1 << 16];
  while (data.size() < max_bytes) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return make_error(ErrorCode::io, "cannot read {}: {}", path.string(), std::strerror(err));
    }
    if (n == 0) break;
    data.append(buffer, static_cast<std::size_t>(
                            std::min<std::uint64_t>(static_cast<std::uint64_t>(n), max_bytes - data.size())));
  }
  ::close(fd);
  return data;
}

}  // namespace

void sort_in_lamport_order(std::vector<TraceEvent>& events) {
  std::sort(events.begin(), events.end(), [](const TraceEvent& a, const TraceEvent& b) {
    return std::tie(a.lamport, a.host, a.seq) < std::tie(b.lamport, b.host, b.seq);
  });
}

std::string_view to_string(EventKind kind) {
  switch (kind) {
    case EventKind::send: return "send";
    case EventKind::receive: return "recv";
    case EventKind::local: break;
  }
  return "local";
}

Result<std::unique_ptr<Recorder>> Recorder::open(const std::filesystem::path& dir, std::uint64_t capacity_bytes) {
  if (capacity_bytes < kMinCapacityBytes) {
    return make_error(ErrorCode::invalid_argument, "the trace ring needs at least {} bytes", kMinCapacityBytes);
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::io, "cannot create {}: {}", dir.string(), ec.message());
  std::unique_ptr<Recorder> recorder(new Recorder(dir, capacity_bytes / 2));
  if (auto loaded = recorder->load(); !loaded) return loaded.error();
  return recorder;
}

Recorder::~Recorder() {
  std::lock_guard lock(m_mutex);
  (void)flush_locked();
  if (m_fd >= 0) ::close(m_fd);
}

std::filesystem::path Recorder::segment_path(int i) const {
  return m_dir / fmt::format("events.{}", i);
}

Result<void> Recorder::load() {
  std::uint64_t last[2] = {0, 0};
  std::uint64_t valid[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    // A segment is at most segment_bytes plus one record; more is not ours
    // (or from a larger capacity before): what fits is read, the rest cut.
    auto bytes = read_file(segment_path(i), m_segment_bytes + kMaxTraceRecordBytes + kHeaderBytes);
    if (!bytes) return bytes.error();
    valid[i] = parse_segment(*bytes, [&](TraceEvent e) { last[i] = std::max(last[i], e.seq); });
    std::error_code ec;
    const auto size =
        std::filesystem::exists(segment_path(i), ec) ? std::filesystem::file_size(segment_path(i), ec) : 0;
    if (!ec && size > valid[i]) {
      log::warn(log::Category::trace, "trace segment {} ends in {} damaged bytes (a crash mid-write); cut off",
                segment_path(i).string(), size - valid[i]);
      std::filesystem::resize_file(segment_path(i), valid[i], ec);
    }
  }
  m_current = last[1] > last[0] ? 1 : 0;
  m_current_bytes = valid[m_current];
  m_seq = std::max(last[0], last[1]);
  m_fd = ::open(segment_path(m_current).c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (m_fd < 0) {
    return make_error(ErrorCode::io, "cannot open {}: {}", segment_path(m_current).string(), std::strerror(errno));
  }
  return {};
}

std::uint64_t Recorder::record(TraceEvent event) {
  std::lock_guard lock(m_mutex);
  event.seq = ++m_seq;
  event.what = cut_utf8(one_line(event.what), kMaxWhatBytes);
  std::string bytes = encode(event);
  if (bytes.size() > kMaxTraceRecordBytes + kHeaderBytes) {
    ++m_write_errors;  // a vector clock past its bound: not recorded
    return event.seq;
  }
  if (m_current_bytes + m_buffer.size() + bytes.size() > m_segment_bytes) {
    (void)flush_locked();
    (void)rotate_locked();
  }
  m_buffer += bytes;
  if (m_buffer.size() >= kMaxBufferBytes) (void)flush_locked();
  return event.seq;
}

Result<void> Recorder::flush() {
  std::lock_guard lock(m_mutex);
  return flush_locked();
}

Result<void> Recorder::flush_locked() {
  if (m_buffer.empty()) return {};
  std::string_view rest(m_buffer);
  while (!rest.empty() && m_fd >= 0) {
    const ssize_t n = ::write(m_fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ++m_write_errors;
      m_buffer.clear();  // bounded: dropped, and counted
      return make_error(ErrorCode::io, "cannot write the trace: {}", std::strerror(err));
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
    m_current_bytes += static_cast<std::uint64_t>(n);
  }
  m_buffer.clear();
  return {};
}

Result<void> Recorder::rotate_locked() {
  if (m_fd >= 0) ::close(m_fd);
  m_current = 1 - m_current;
  m_current_bytes = 0;
  m_fd = ::open(segment_path(m_current).c_str(), O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (m_fd < 0) {
    return make_error(ErrorCode::io, "cannot open {}: {}", segment_path(m_current).string(), std::strerror(errno));
  }
  return {};
}

Result<std::vector<TraceEvent>> Recorder::events(std::string_view job_id, std::uint64_t after_seq, std::size_t limit) {
  std::deque<TraceEvent> kept;
  int current = 0;
  {
    std::lock_guard lock(m_mutex);
    if (auto flushed = flush_locked(); !flushed) return flushed.error();
    current = m_current;
  }
  // Read and decoded without the lock: a full ring is tens of MiB, and the
  // io thread records events meanwhile. A rotation racing with the read
  // leaves fewer events in the older segment, never a wrong one.
  for (int i : {1 - current, current}) {  // the older segment first
    auto bytes = read_file(segment_path(i), m_segment_bytes + kMaxTraceRecordBytes + kHeaderBytes);
    if (!bytes) return bytes.error();
    parse_segment(*bytes, [&](TraceEvent e) {
      if (e.seq <= after_seq || (!job_id.empty() && e.job_id != job_id)) return;
      kept.push_back(std::move(e));
      if (kept.size() > limit) kept.pop_front();
    });
  }
  return std::vector<TraceEvent>(std::make_move_iterator(kept.begin()), std::make_move_iterator(kept.end()));
}

std::uint64_t Recorder::last_seq() const {
  std::lock_guard lock(m_mutex);
  return m_seq;
}

std::uint64_t Recorder::write_errors() const {
  std::lock_guard lock(m_mutex);
  return m_write_errors;
}

}  // namespace p2pd::trace
