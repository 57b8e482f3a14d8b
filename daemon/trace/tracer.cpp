#include "daemon/trace/tracer.hpp"

#include <fmt/format.h>

#include "daemon/trace/event_record.hpp"
#include "proto/trace.pb.h"

namespace p2pd::trace {
namespace {

constexpr std::size_t kMaxIdBytes = 128;

}  // namespace

Tracer::Tracer(std::string host, Recorder* recorder, clocks::HybridClock::PhysicalClock physical)
    : m_host(std::move(host)), m_recorder(recorder), m_physical(physical), m_hlc(physical, kMaxClockOffsetMs) {}

clocks::VectorClock& Tracer::job_clock_locked(std::string_view job_id) {
  auto it = m_jobs.find(job_id);
  if (it == m_jobs.end()) {
    if (m_jobs.size() >= kMaxJobClocks) {
      auto oldest = m_jobs.begin();
      for (auto j = m_jobs.begin(); j != m_jobs.end(); ++j) {
        if (j->second.second < oldest->second.second) oldest = j;
      }
      m_jobs.erase(oldest);
    }
    it = m_jobs.emplace(std::string(job_id), std::pair{clocks::VectorClock{}, std::uint64_t{0}}).first;
  }
  it->second.second = ++m_use;
  return it->second.first;
}

void Tracer::record_locked(EventKind kind, std::string_view what, std::string_view job_id, std::string msg_id,
                           std::uint64_t lamport, clocks::HlcTimestamp hlc) {
  if (m_recorder == nullptr) return;
  TraceEvent event;
  event.host = m_host;
  event.lamport = lamport;
  event.hlc = hlc;
  if (!job_id.empty()) event.vc = job_clock_locked(job_id);
  event.kind = kind;
  event.msg_id = std::move(msg_id);
  event.job_id = std::string(job_id);
  event.what = std::string(what);
  event.wall_ms = m_physical();
  m_recorder->record(std::move(event));
}

std::string Tracer::on_send(std::string_view what, std::string_view job_id) {
  TraceContext context;
  {
    std::lock_guard lock(m_mutex);
    const std::uint64_t lamport = m_lamport.tick();
    const clocks::HlcTimestamp hlc = m_hlc.now();
    context.set_lamport(lamport);
    context.set_hlc_l(hlc.l);
    context.set_hlc_c(hlc.c);
    if (!what.empty()) {
      // Unique for this host, across restarts too: its HLC never repeats.
      std::string msg_id = fmt::format("{}-{}.{}", m_host.substr(0, 8), hlc.l, hlc.c);
      context.set_msg_id(msg_id);
      if (!job_id.empty()) {
        auto& vc = job_clock_locked(job_id);
        vc.tick(m_host);
        context.set_job_id(std::string(job_id));
        for (const auto& [node, value] : vc.entries()) {
          auto* entry = context.add_vc();
          entry->set_node(node);
          entry->set_value(value);
        }
      }
      record_locked(EventKind::send, what, job_id, std::move(msg_id), lamport, hlc);
    }
  }
  // A job with very many participants: its vector clock stays home (the
  // receiver then only ticks its own entry) rather than outgrow what gRPC
  // accepts as metadata.
  if (context.ByteSizeLong() > kMaxStampBytes) context.clear_vc();
  return context.SerializeAsString();
}

void Tracer::on_receive(std::string_view encoded, std::string_view what) {
  if (encoded.empty()) return;  // a peer that stamps nothing (none yet does)
  TraceContext context;
  // The ids become this node's trace records, and its job clocks: what
  // from_record would refuse later (not printable ASCII) is refused now.
  bool valid = encoded.size() <= kMaxTraceContextBytes &&
               context.ParseFromArray(encoded.data(), static_cast<int>(encoded.size())) &&
               context.msg_id().size() <= kMaxIdBytes && context.job_id().size() <= kMaxIdBytes &&
               is_id(context.msg_id()) && is_id(context.job_id()) &&
               static_cast<std::size_t>(context.vc_size()) <= clocks::VectorClock::kMaxEntries;
  clocks::VectorClock remote_vc;
  for (int i = 0; valid && i < context.vc_size(); ++i) {
    if (context.vc(i).node().empty() || context.vc(i).node().size() > kMaxIdBytes || !is_id(context.vc(i).node())) {
      valid = false;
    }
    remote_vc.set(context.vc(i).node(), context.vc(i).value());
  }
  std::lock_guard lock(m_mutex);
  if (!valid) {
    ++m_bad_contexts;
    return;
  }
  const std::uint64_t lamport = m_lamport.receive(context.lamport());
  const clocks::HlcTimestamp hlc = m_hlc.receive({context.hlc_l(), context.hlc_c()}).time;
  if (context.msg_id().empty()) return;  // the sender did not record it: neither do we
  if (!context.job_id().empty()) {
    auto& vc = job_clock_locked(context.job_id());
    vc.merge(remote_vc);
    vc.tick(m_host);
  }
  record_locked(EventKind::receive, what.empty() ? std::string_view("message") : what, context.job_id(),
                context.msg_id(), lamport, hlc);
}

void Tracer::local(std::string_view what, std::string_view job_id) {
  std::lock_guard lock(m_mutex);
  const std::uint64_t lamport = m_lamport.tick();
  const clocks::HlcTimestamp hlc = m_hlc.now();
  if (!job_id.empty()) job_clock_locked(job_id).tick(m_host);
  record_locked(EventKind::local, what, job_id, {}, lamport, hlc);
}

std::uint64_t Tracer::lamport() const {
  std::lock_guard lock(m_mutex);
  return m_lamport.now();
}

clocks::VectorClock Tracer::job_clock(std::string_view job_id) const {
  std::lock_guard lock(m_mutex);
  auto it = m_jobs.find(job_id);
  return it == m_jobs.end() ? clocks::VectorClock{} : it->second.first;
}

std::uint64_t Tracer::bad_contexts() const {
  std::lock_guard lock(m_mutex);
  return m_bad_contexts;
}

}  // namespace p2pd::trace
