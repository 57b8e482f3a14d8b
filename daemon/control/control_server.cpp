#include "daemon/control/control_server.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <array>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>

#include "common/log.hpp"
#include "common/one_line.hpp"
#include "daemon/control/caller.hpp"
#include "daemon/control/control_listener.hpp"
#include "daemon/control/control_socket.hpp"
#include "daemon/control/control_streams.hpp"
#include "daemon/trace/event_record.hpp"
#include "proto/control.grpc.pb.h"

namespace p2pd::control {

// Bounded input (house rule): control requests are small; bulk data will come
// as streams of chunks, each under this limit.
inline constexpr int kMaxControlMessageBytes = 4 << 20;
// Per-host cursors a trace request may carry (--follow sends one per host).
inline constexpr std::size_t kMaxTraceCursors = 1024;

namespace {

void set_ref(proto::NodeRef* out, const NodeRef& in) {
  out->set_node_id(in.node_id);
  out->set_addr(in.addr);
}

}  // namespace

class ControlService final : public proto::Control::CallbackService {
 public:
  ControlService(ControlHandler& handler, const CallerRegistry& callers, std::string host)
      : m_handler(handler), m_callers(callers), m_host(std::move(host)) {}

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context, const proto::StatusRequest* /*request*/,
                                   proto::StatusReply* reply) override {
    auto* reactor = context->DefaultReactor();
    // The reply object stays valid until Finish(): gRPC calls OnDone only after it.
    m_handler.get_status([reactor, reply](NodeStatus status) {
      reply->set_node_id(status.node_id);
      reply->set_listen(status.listen);
      for (auto& addr : status.observed_addrs) reply->add_observed_addrs(addr);
      reply->set_reachability(status.reachability);
      if (status.leader_id) reply->set_leader_id(*status.leader_id);
      reply->set_executor(status.executor);
      reply->set_executor_device(status.executor_device);
      reply->set_version(status.version);
      reply->set_uptime_s(status.uptime_s);
      reply->set_pid(status.pid);
      reply->set_state_dir(status.state_dir);
      for (auto& peer : status.bootstrap) {
        auto* out = reply->add_bootstrap();
        out->set_addr(peer.addr);
        if (peer.node_id) out->set_node_id(*peer.node_id);
        out->set_failures(peer.failures);
      }
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Netcheck(grpc::CallbackServerContext* context, const proto::NetcheckRequest* /*request*/,
                                     proto::NetcheckReply* reply) override {
    auto* reactor = context->DefaultReactor();
    m_handler.netcheck([reactor, reply](NetcheckView view) {
      for (const auto& o : view.observed) {
        auto* out = reply->add_observed();
        out->set_ip(o.ip);
        out->set_observers(static_cast<std::uint32_t>(o.observers));
        out->set_adopted(o.adopted);
      }
      reply->set_observers(static_cast<std::uint32_t>(view.observers));
      reply->set_reachability(view.reachability);
      reply->set_reachability_detail(view.reachability_detail);
      if (view.reachability_checked_s) reply->set_reachability_checked_s(*view.reachability_checked_s);
      reply->set_nat_mapping(view.nat_mapping);
      for (const auto& server : view.stun) {
        auto* out = reply->add_stun();
        out->set_server(server.server);
        if (server.mapped) out->set_mapped(*server.mapped);
        out->set_rtt_ms(server.rtt_ms);
        out->set_error(server.error);
      }
      reply->set_port_mapping(view.port_mapping);
      auto* mapping = reply->mutable_port_mapping_state();
      mapping->set_enabled(view.port_mapping_state.enabled);
      mapping->set_addr(view.port_mapping_state.addr);
      mapping->set_gateway(view.port_mapping_state.gateway);
      mapping->set_lifetime_s(view.port_mapping_state.lifetime_s);
      mapping->set_renew_in_s(view.port_mapping_state.renew_in_s);
      mapping->set_renewals(view.port_mapping_state.renewals);
      mapping->set_error(view.port_mapping_state.error);
      auto* relay = reply->mutable_relay();
      relay->set_state(view.relay.state);
      relay->set_peer(view.relay.peer);
      relay->set_addr(view.relay.addr);
      relay->set_error(view.relay.error);
      if (view.relay_service) {
        auto* service = reply->mutable_relay_service();
        service->set_reservations(view.relay_service->reservations);
        service->set_circuits(view.relay_service->circuits);
        service->set_bytes_relayed(view.relay_service->bytes_relayed);
        service->set_circuits_refused(view.relay_service->circuits_refused);
        service->set_max_reservations(view.relay_service->max_reservations);
        service->set_max_circuits(view.relay_service->max_circuits);
        service->set_max_rate_mib(view.relay_service->max_rate_mib);
      }
      auto* punching = reply->mutable_punching();
      punching->set_attempts(view.punching.attempts);
      punching->set_succeeded(view.punching.succeeded);
      punching->set_direct_calls(view.punching.direct_calls);
      for (const auto& addr : view.punching.direct) punching->add_direct(addr);
      for (const auto& addr : view.punching.relayed) punching->add_relayed(addr);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Punch(grpc::CallbackServerContext* context, const proto::PunchRequest* request,
                                  proto::PunchReply* reply) override {
    auto* reactor = context->DefaultReactor();
    if (request->peer().empty() || request->peer().size() > 300) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "peer must be a node id or HOST:PORT"));
      return reactor;
    }
    m_handler.punch(request->peer(), [reactor, reply](p2pd::Result<PunchView> result) {
      if (!result) {
        reactor->Finish(to_status(result.error()));
        return;
      }
      reply->set_node_id(result->node_id);
      reply->set_addr(result->addr);
      reply->set_result(result->result);
      reply->set_rtt_ms(result->rtt_ms);
      reply->set_elapsed_ms(result->elapsed_ms);
      reply->set_error(result->error);
      reply->set_attempts(result->attempts);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Leader(grpc::CallbackServerContext* context, const proto::LeaderRequest* /*request*/,
                                   proto::LeaderReply* reply) override {
    auto* reactor = context->DefaultReactor();
    m_handler.get_leader([reactor, reply](LeaderView view) {
      reply->set_term(view.term);
      if (view.leader_id) reply->set_leader_id(*view.leader_id);
      if (view.leader_addr) reply->set_leader_addr(*view.leader_addr);
      reply->set_role(view.role);
      for (auto& v : view.voters) reply->add_voters(v);
      reply->set_commit_index(view.commit_index);
      reply->set_last_index(view.last_index);
      reply->set_applied_index(view.applied_index);
      reply->set_snapshot_index(view.snapshot_index);
      reply->set_target_voters(view.target_voters);
      for (const auto& f : view.followers) {
        auto* out = reply->add_followers();
        out->set_node_id(f.node_id);
        out->set_match_index(f.match_index);
        out->set_silent_ms(f.silent_ms);
        out->set_voter(f.voter);
      }
      for (const auto& w : view.workers) {
        auto* out = reply->add_workers();
        out->set_node_id(w.node_id);
        out->set_executor(w.executor);
        out->set_gflops(w.gflops);
        out->set_memory_bytes(w.memory_bytes);
        out->set_slots(w.slots);
        out->set_running(w.running);
        out->set_silent_ms(w.silent_ms);
        out->set_banned_ms(w.banned_ms);
      }
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Ring(grpc::CallbackServerContext* context, const proto::RingRequest* /*request*/,
                                 proto::RingReply* reply) override {
    auto* reactor = context->DefaultReactor();
    m_handler.get_ring([reactor, reply](RingView ring) {
      set_ref(reply->mutable_self(), ring.self);
      if (ring.predecessor) set_ref(reply->mutable_predecessor(), *ring.predecessor);
      for (const auto& s : ring.successors) set_ref(reply->add_successors(), s);
      for (const auto& f : ring.fingers) {
        auto* out = reply->add_fingers();
        out->set_start(f.start);
        out->set_node_id(f.node.node_id);
        out->set_addr(f.node.addr);
      }
      reply->set_member(ring.member);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Peers(grpc::CallbackServerContext* context, const proto::PeersRequest* /*request*/,
                                  proto::PeersReply* reply) override {
    auto* reactor = context->DefaultReactor();
    m_handler.get_peers([reactor, reply](std::vector<PeerView> peers) {
      for (const auto& p : peers) {
        auto* out = reply->add_peers();
        out->set_node_id(p.node_id);
        out->set_addr(p.addr);
        out->set_connection(p.connection);
        out->set_executor(p.executor);
        if (p.last_seen_s) out->set_last_seen_s(*p.last_seen_s);
        for (const auto& role : p.roles) out->add_roles(role);
      }
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Lookup(grpc::CallbackServerContext* context, const proto::LookupRequest* request,
                                   proto::LookupReply* reply) override {
    auto* reactor = context->DefaultReactor();
    m_handler.lookup(request->key(), [reactor, reply](::p2pd::Result<LookupView> result) {
      if (!result) {
        reactor->Finish(to_status(result.error()));
        return;
      }
      reply->set_key(result->key);
      set_ref(reply->mutable_owner(), result->owner);
      reply->set_hops(result->hops);
      for (const auto& id : result->path) reply->add_path(id);
      for (const auto& r : result->replicas) set_ref(reply->add_replicas(), r);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* context, const proto::PutRequest* request,
                                proto::PutReply* reply) override {
    auto* reactor = context->DefaultReactor();
    m_handler.put(request->key(), request->value(), [reactor, reply](::p2pd::Result<PutView> result) {
      if (!result) {
        reactor->Finish(to_status(result.error()));
        return;
      }
      reply->set_key(result->key);
      reply->set_version(result->version);
      reply->set_copies(result->copies);
      for (const auto& h : result->holders) set_ref(reply->add_holders(), h);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context, const proto::GetRequest* request,
                                proto::GetReply* reply) override {
    auto* reactor = context->DefaultReactor();
    m_handler.get(request->key(), [reactor, reply](::p2pd::Result<GetView> result) {
      if (!result) {
        reactor->Finish(to_status(result.error()));
        return;
      }
      reply->set_key(result->key);
      reply->set_value(result->value);
      reply->set_version(result->version);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Leave(grpc::CallbackServerContext* context, const proto::LeaveRequest* /*request*/,
                                  proto::LeaveReply* reply) override {
    auto* reactor = context->DefaultReactor();
    m_handler.leave([reactor, reply](::p2pd::Result<LeaveView> result) {
      if (!result) {
        reactor->Finish(to_status(result.error()));
        return;
      }
      reply->set_keys_handed_over(result->keys_handed_over);
      reply->set_successor(result->successor);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerReadReactor<proto::SubmitMessage>* Submit(grpc::CallbackServerContext* context,
                                                        proto::SubmitReply* reply) override {
    // Every connection came through the listener, which recorded its caller.
    const auto caller = m_callers.find(context->peer());
    return start_submit(context, m_handler, reply,
                        fmt::format("{}@{}", caller ? caller->user : "unknown user", m_host));
  }

  grpc::ServerWriteReactor<proto::ResultMessage>* Result(grpc::CallbackServerContext* context,
                                                         const proto::ResultRequest* request) override {
    return start_result(context, m_handler, request);
  }

  grpc::ServerUnaryReactor* Trace(grpc::CallbackServerContext* context, const proto::TraceRequest* request,
                                  proto::TraceReply* reply) override {
    auto* reactor = context->DefaultReactor();
    TraceQueryView query;
    query.job_id = request->job_id();
    for (const auto& [host, seq] : request->after_seq()) {
      if (query.after_seq.size() >= kMaxTraceCursors) break;
      query.after_seq.emplace(host, seq);
    }
    m_handler.trace(std::move(query), [reactor, reply](::p2pd::Result<TraceView> view) {
      if (!view) return reactor->Finish(to_status(view.error()));
      for (const auto& e : view->events) trace::to_record(e, *reply->add_events());
      for (const auto& host : view->unreachable) reply->add_unreachable(host);
      reply->set_job_id(view->job_id);
      reply->set_truncated(view->truncated);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Jobs(grpc::CallbackServerContext* context, const proto::JobsRequest* /*request*/,
                                 proto::JobsReply* reply) override {
    auto* reactor = context->DefaultReactor();
    m_handler.list_jobs([reactor, reply](std::vector<JobSummaryView> jobs) {
      for (const auto& j : jobs) {
        auto* out = reply->add_jobs();
        out->set_job_id(j.job_id);
        out->set_kind(j.kind);
        out->set_state(j.state);
        out->set_submitted_at(j.submitted_at);
        out->set_shards_done(j.shards_done);
        out->set_shards_total(j.shards_total);
      }
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Job(grpc::CallbackServerContext* context, const proto::JobRequest* request,
                                proto::JobReply* reply) override {
    auto* reactor = context->DefaultReactor();
    JobWait wait{request->wait_ms(), request->known_state(), request->known_shards_done()};
    m_handler.get_job(request->job_id(), std::move(wait), [reactor, reply](::p2pd::Result<JobView> job) {
      if (!job) return reactor->Finish(to_status(job.error()));
      fill_job(*job, *reply);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Cancel(grpc::CallbackServerContext* context, const proto::CancelRequest* request,
                                   proto::CancelReply* reply) override {
    auto* reactor = context->DefaultReactor();
    m_handler.cancel_job(request->job_id(), [reactor, reply](::p2pd::Result<JobView> job) {
      if (!job) return reactor->Finish(to_status(job.error()));
      reply->set_job_id(job->job_id);
      reply->set_state(job->state);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

 private:
  static void fill_job(const JobView& job, proto::JobReply& reply) {
    reply.set_job_id(job.job_id);
    reply.set_kind(job.kind);
    reply.set_state(job.state);
    for (const auto& s : job.shards) {
      auto* out = reply.add_shards();
      out->set_index(s.index);
      out->set_state(s.state);
      out->set_peer(s.peer);
      out->set_attempts(s.attempts);
      out->set_row_begin(s.row_begin);
      out->set_row_end(s.row_end);
      out->set_last_error(s.last_error);
    }
    if (job.error) reply.set_error(*job.error);
    reply.set_submitted_at(job.submitted_at);
    reply.set_submitter(job.submitter);
    reply.set_a_rows(job.a_rows);
    reply.set_a_cols(job.a_cols);
    reply.set_b_rows(job.b_rows);
    reply.set_b_cols(job.b_cols);
    reply.set_max_attempts(job.max_attempts);
  }

  ControlHandler& m_handler;
  const CallerRegistry& m_callers;
  const std::string m_host;
};

// Serves the connections of callers that may not use the socket: every call
// is answered PERMISSION_DENIED with the reason, so p2pctl prints one clear
// line instead of a dropped connection.
class RefusalService final : public grpc::CallbackGenericService {
 public:
  RefusalService(const CallerRegistry& callers, std::string rule) : m_callers(callers), m_rule(std::move(rule)) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* context) override {
    const auto caller = m_callers.find(context->peer());
    return new Refusal(
        fmt::format("{} may not use this control socket: {}", caller ? describe(*caller) : "this caller", m_rule));
  }

 private:
  class Refusal final : public grpc::ServerGenericBidiReactor {
   public:
    explicit Refusal(const std::string& why) { Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, why)); }
    void OnDone() override { delete this; }
  };

  const CallerRegistry& m_callers;
  const std::string m_rule;
};

namespace {

std::string host_name() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0 || host[0] == '\0') return "localhost";
  return one_line(host.data());
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::start(const std::filesystem::path& socket_path,
                                                            ControlHandler& handler) {
  if (auto prepared = prepare_control_socket_path(socket_path); !prepared) return prepared.error();
  auto listener = ControlListener::bind(socket_path);
  if (!listener) return listener.error();

  std::unique_ptr<ControlServer> server(new ControlServer());
  server->m_path = socket_path;
  server->m_listener = std::move(*listener);
  server->m_owner = ::geteuid();
  server->m_callers = std::make_unique<CallerRegistry>();
  server->m_service = std::make_unique<ControlService>(handler, *server->m_callers, host_name());
  const std::string owner = server->m_owner == 0 ? std::string("root") : user_name(server->m_owner) + " and root";
  server->m_refusal = std::make_unique<RefusalService>(
      *server->m_callers,
      fmt::format("only {} and members of group {} may", owner, group_name(server->m_listener->group())));

  // Neither server listens: the listener hands them connections.
  grpc::ServerBuilder builder;
  builder.RegisterService(server->m_service.get());
  builder.SetMaxReceiveMessageSize(kMaxControlMessageBytes);
  builder.SetMaxSendMessageSize(kMaxControlMessageBytes);
  server->m_server = builder.BuildAndStart();
  grpc::ServerBuilder refusal_builder;
  refusal_builder.RegisterCallbackGenericService(server->m_refusal.get());
  server->m_refusal_server = refusal_builder.BuildAndStart();
  if (!server->m_server || !server->m_refusal_server) {
    remove_control_socket(socket_path, server->m_listener->inode());
    return make_error(ErrorCode::unavailable, "cannot start serving the control socket {}", socket_path.string());
  }
  if (!server->m_listener->start(
          [s = server.get()](int fd, Caller caller) { s->on_connection(fd, std::move(caller)); })) {
    remove_control_socket(socket_path, server->m_listener->inode());
    return make_error(ErrorCode::io, "cannot start accepting on the control socket {}", socket_path.string());
  }
  log::info(log::Category::control, "control socket {} (mode 0660; owner {}, group {})", socket_path.string(),
            user_name(server->m_owner), group_name(server->m_listener->group()));
  return server;
}

void ControlServer::on_connection(int fd, Caller caller) {
  const gid_t group = m_listener->group();
  const bool allowed = may_use_control(caller, m_owner, group);
  if (!allowed) {
    if (const auto held_back = m_refusal_log.admit()) {
      log::warn(log::Category::control, "refused a control connection from {}: not the owner, root or in group {}{}",
                describe(caller), group_name(group), log::held_back_note(*held_back));
    }
  }
  m_callers->remember(fd, std::move(caller));
  grpc::AddInsecureChannelFromFd(allowed ? m_server.get() : m_refusal_server.get(), fd);
}

void ControlServer::shutdown(std::chrono::milliseconds grace) {
  if (!m_listener) return;
  m_listener->stop();  // no new connections from here
  const auto deadline = std::chrono::system_clock::now() + grace;
  for (auto* server : {m_server.get(), m_refusal_server.get()}) {
    if (server != nullptr) server->Shutdown(deadline);
  }
  for (auto* server : {m_server.get(), m_refusal_server.get()}) {
    if (server != nullptr) server->Wait();
  }
  m_server.reset();
  m_refusal_server.reset();
  remove_control_socket(m_path, m_listener->inode());
  m_listener.reset();
}

ControlServer::~ControlServer() {
  shutdown(std::chrono::milliseconds(0));
}

}  // namespace p2pd::control
