#pragma once
// This node's clocks and what it records with them (DESIGN.md, "Causal
// traces"). Every peer message is stamped with the Lamport clock and the
// HLC (on_send) and every received stamp advances them (on_receive), so the
// clocks order everything the pool does. Only protocol actions are
// recorded: a send or receive when the caller names it (`what`), and local
// events; heartbeats and ring maintenance move the clocks but do not fill
// the ring.
//
// A job's events also carry the job's vector clock, scoped to the nodes
// that took part in the job: this node's entry counts exactly its recorded
// events of that job (1, 2, 3, ...), as ShiViz expects.
//
// Thread-safe: messages go out on the io thread and come in on gRPC's.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "common/clocks.hpp"
#include "daemon/trace/recorder.hpp"

namespace p2pd::trace {

// The metadata key a peer message's TraceContext travels under.
inline constexpr std::string_view kTraceMetadataKey = "p2pd-trace-bin";
// Bounds on what a peer may send in one: a job's participants, ids.
inline constexpr std::size_t kMaxTraceContextBytes = 16u << 10;
// What a stamp may take on the wire (base64 in a gRPC header makes it 4/3 of
// this; p2pd's peer server accepts 32 KiB of metadata).
inline constexpr std::size_t kMaxStampBytes = 12u << 10;
// A peer's HLC more than this ahead of our wall clock is not followed.
inline constexpr std::uint64_t kMaxClockOffsetMs = 60'000;

class Tracer {
 public:
  // `recorder` may be null (nothing recorded, clocks still kept).
  Tracer(std::string host, Recorder* recorder, clocks::HybridClock::PhysicalClock physical);

  // Stamps an outgoing message: the encoded TraceContext for its metadata.
  // With a `what`, the send is recorded (and the receiver will record the
  // receive); with a `job_id` too, it is one of the job's events.
  std::string on_send(std::string_view what = {}, std::string_view job_id = {});
  // An incoming message's TraceContext (`encoded`; empty when the peer sent
  // none). A malformed one is ignored (counted): clocks are advice, and a
  // peer's bad stamp must not fail its message. `what` names the receive.
  void on_receive(std::string_view encoded, std::string_view what);
  // A local protocol event (a term change, a verdict, ...).
  void local(std::string_view what, std::string_view job_id = {});

  [[nodiscard]] std::uint64_t lamport() const;
  [[nodiscard]] clocks::VectorClock job_clock(std::string_view job_id) const;
  [[nodiscard]] std::uint64_t bad_contexts() const;

 private:
  // Under the lock: records an event stamped with the current clocks.
  void record_locked(EventKind kind, std::string_view what, std::string_view job_id, std::string msg_id,
                     std::uint64_t lamport, clocks::HlcTimestamp hlc);
  clocks::VectorClock& job_clock_locked(std::string_view job_id);

  // Job vector clocks kept at most; the least recently used job's goes.
  static constexpr std::size_t kMaxJobClocks = 1024;

  std::string m_host;
  Recorder* m_recorder;
  clocks::HybridClock::PhysicalClock m_physical;
  mutable std::mutex m_mutex;
  clocks::LamportClock m_lamport;
  clocks::HybridClock m_hlc;
  std::uint64_t m_next_msg = 0;
  std::map<std::string, std::pair<clocks::VectorClock, std::uint64_t>, std::less<>> m_jobs;  // clock, last use
  std::uint64_t m_use = 0;
  std::uint64_t m_bad_contexts = 0;
};

}  // namespace p2pd::trace
