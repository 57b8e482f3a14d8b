// This node's causal trace (DESIGN.md, "Causal traces"): the recorder under
// STATE_DIR/traces and the tracer whose clocks stamp every peer message.
#include <boost/asio/post.hpp>

#include <algorithm>
#include <tuple>

#include "common/log.hpp"
#include "common/version.hpp"
#include "daemon/node/node.hpp"
#include "daemon/trace/event_record.hpp"
#include "proto/peer.pb.h"

namespace p2pd::node {

Result<void> Node::start_trace() {
  if (m_config.trace_capacity_mib == 0) {
    log::info(log::Category::trace, "tracing is off (--trace-capacity 0): no clocks on messages, nothing recorded");
    return {};
  }
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

namespace {

// Events one trace answer holds at most, over all hosts: the control reply
// must stay within its 4 MiB.
constexpr std::size_t kMaxTraceEvents = 15000;
constexpr std::chrono::milliseconds kTraceCallTimeout{5000};

}  // namespace

void Node::trace(control::TraceQueryView query, std::function<void(Result<control::TraceView>)> done) {
  boost::asio::post(m_io, [this, query = std::move(query), done = std::move(done)]() mutable {
    if (!m_trace_recorder || !m_peer_client) {
      return done(make_error(ErrorCode::unavailable, "this node keeps no trace"));
    }
    std::string job_id;
    if (!query.job_id.empty()) {
      auto found = m_jobs.find_by_prefix(query.job_id);
      if (!found) return done(found.error());
      job_id = (*found)->job_id;
    }
    // Every node heard from lately, and this one.
    std::vector<std::pair<std::string, std::string>> peers;  // node id hex, address
    const auto now = std::chrono::steady_clock::now();
    for (const auto& [id, seen] : m_peers_seen) {
      if (id != m_identity.id && !seen.addr.empty() && now - seen.last_seen < kLearnerFreshness) {
        peers.emplace_back(id.hex(), seen.addr);
      }
    }
    const std::size_t per_host = std::max<std::size_t>(100, kMaxTraceEvents / (peers.size() + 1));
    struct Gather {
      control::TraceView view;
      std::size_t waiting = 0;
      std::function<void(Result<control::TraceView>)> done;
    };
    auto gather = std::make_shared<Gather>();
    gather->view.job_id = job_id;
    gather->waiting = peers.size() + 1;
    gather->done = std::move(done);
    auto finish_one = [gather]() {
      if (--gather->waiting > 0) return;
      trace::sort_in_lamport_order(gather->view.events);
      gather->done(std::move(gather->view));
    };
    auto after = [&query](const std::string& host) {
      auto it = query.after_seq.find(host);
      return it == query.after_seq.end() ? std::uint64_t{0} : it->second;
    };
    // This node's own, read off the io thread (disk).
    boost::asio::post(m_blocking, [this, gather, finish_one, job_id, per_host, since = after(m_identity.id.hex())] {
      auto events = m_trace_recorder->events(job_id, since, per_host + 1);
      boost::asio::post(m_io, [gather, finish_one, per_host, events = std::move(events)]() mutable {
        if (events) {
          if (events->size() > per_host) {
            events->erase(events->begin());
            gather->view.truncated = true;
          }
          for (auto& e : *events) gather->view.events.push_back(std::move(e));
        }
        finish_one();
      });
    });
    for (const auto& [host, addr] : peers) {
      auto to = parse_host_port(addr, false);
      if (!to) {
        gather->view.unreachable.push_back(host);
        finish_one();
        continue;
      }
      proto::TraceQuery request;
      request.set_job_id(job_id);
      request.set_after_seq(after(host));
      request.set_limit(static_cast<std::uint32_t>(per_host));
      m_peer_client->trace_events(*to, request, kTraceCallTimeout,
                                  [gather, finish_one, host = host](Result<proto::TraceEvents> reply) {
                                    if (!reply) {
                                      gather->view.unreachable.push_back(host);
                                      return finish_one();
                                    }
                                    if (reply->truncated()) gather->view.truncated = true;
                                    for (const auto& record : reply->events()) {
                                      // A peer's events are input like any other, and must be its own.
                                      auto event = trace::from_record(record);
                                      if (event && event->host == host)
                                        gather->view.events.push_back(std::move(*event));
                                    }
                                    finish_one();
                                  });
    }
  });
}

}  // namespace p2pd::node
