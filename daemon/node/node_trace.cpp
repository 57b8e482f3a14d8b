// This node's causal trace (DESIGN.md, "Causal traces"): the recorder under
// STATE_DIR/traces and the tracer whose clocks stamp every peer message.
#include "common/log.hpp"
#include "common/version.hpp"
#include "daemon/node/node.hpp"

namespace p2pd::node {

Result<void> Node::start_trace() {
  auto recorder = trace::Recorder::open(m_config.state_dir / "traces",
                                        static_cast<std::uint64_t>(m_config.trace_capacity_mib) << 20);
  if (!recorder) return recorder.error();
  m_trace_recorder = std::move(*recorder);
  m_tracer = std::make_unique<trace::Tracer>(m_identity.id.hex(), m_trace_recorder.get(), [] { return now_unix_ms(); });
  trace_local(fmt::format("p2pd {} started", kVersion));
  return {};
}

void Node::trace_local(std::string_view what, std::string_view job_id) {
  if (m_tracer) m_tracer->local(what, job_id);
}

void Node::flush_trace() {
  if (!m_trace_recorder) return;
  if (auto flushed = m_trace_recorder->flush(); !flushed) {
    log::warn(log::Category::trace, "{} (events are dropped until it works again)", flushed.error().message);
  }
}

}  // namespace p2pd::node
