#pragma once
// This node's causal trace (DESIGN.md, "Causal traces"): send, receive and
// local events with their clocks, in a bounded ring on disk under
// STATE_DIR/traces, so a daemon that stays up for months keeps its recent
// history in a fixed amount of space and finds it again after a restart.
//
// The ring is two segment files of capacity/2 each; when the current one is
// full the other is emptied and written next, so the newest capacity/2 to
// capacity bytes of events are always there. Record: u32 payload length,
// u32 CRC-32 of the payload, payload = TraceEventRecord (proto/trace.proto).
// A torn or damaged tail (a crash mid-write) ends a segment: it is cut off on
// open. Events are buffered and written at flush() (the node's tick) or when
// the buffer fills, not fsynced: a trace is for understanding, and losing the
// last tick's events in a power cut is an acceptable price for recording
// that costs nothing measurable.
//
// Thread-safe.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clocks.hpp"
#include "common/result.hpp"

namespace p2pd::trace {

enum class EventKind { local = 0, send = 1, receive = 2 };
std::string_view to_string(EventKind kind);

struct TraceEvent {
  std::uint64_t seq = 0;  // assigned by record()
  std::string host;       // node id, hex
  std::uint64_t lamport = 0;
  clocks::HlcTimestamp hlc;
  clocks::VectorClock vc;  // the job's, for a job's events
  EventKind kind = EventKind::local;
  std::string msg_id;  // sends and receives
  std::string job_id;  // empty: not a job's event
  std::string what;
  std::uint64_t wall_ms = 0;
};

// Sorts events gathered from several hosts into Lamport order, a linear
// extension of happened-before (a -> b implies L(a) < L(b)); ties broken
// by host, then by the host's own order.
void sort_in_lamport_order(std::vector<TraceEvent>& events);

// The largest record accepted: bounds what a damaged length can allocate.
inline constexpr std::uint32_t kMaxTraceRecordBytes = 64u << 10;
// A `what` longer than this is cut: one line, not a dump.
inline constexpr std::size_t kMaxWhatBytes = 512;

class Recorder {
 public:
  static constexpr std::uint64_t kMinCapacityBytes = 64u << 10;

  // Opens (creating) the ring in `dir`, at most `capacity_bytes` on disk.
  static Result<std::unique_ptr<Recorder>> open(const std::filesystem::path& dir, std::uint64_t capacity_bytes);
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Records `event` (its seq is assigned here); returns the seq.
  std::uint64_t record(TraceEvent event);
  // Writes the buffered events out.
  Result<void> flush();
  // The recorded events, oldest first: those of `job_id` only when it is
  // not empty, those after `after_seq`, and of those at most the newest `limit`.
  Result<std::vector<TraceEvent>> events(std::string_view job_id, std::uint64_t after_seq, std::size_t limit);
  [[nodiscard]] std::uint64_t last_seq() const;
  // Events dropped because a record could not be written (disk full, ...).
  [[nodiscard]] std::uint64_t write_errors() const;

 private:
  Recorder(std::filesystem::path dir, std::uint64_t segment_bytes)
      : m_dir(std::move(dir)), m_segment_bytes(segment_bytes) {}
  Result<void> load();
  Result<void> flush_locked();
  Result<void> rotate_locked();
  [[nodiscard]] std::filesystem::path segment_path(int i) const;

  std::filesystem::path m_dir;
  std::uint64_t m_segment_bytes;
  mutable std::mutex m_mutex;
  int m_current = 0;                  // the segment written to
  std::uint64_t m_current_bytes = 0;  // its size on disk
  int m_fd = -1;                      // open on it, for appending
  std::string m_buffer;               // encoded records not yet written
  std::uint64_t m_seq = 0;
  std::uint64_t m_write_errors = 0;
};

}  // namespace p2pd::trace
