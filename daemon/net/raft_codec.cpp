#include "daemon/net/raft_codec.hpp"

#include <span>
#include <type_traits>

namespace p2pd::net {
namespace {

std::string id_bytes(const NodeId& id) {
  return {reinterpret_cast<const char*>(id.bytes().data()), NodeId::kBytes};
}

Result<NodeId> id_from(const std::string& bytes, const char* what) {
  auto id = NodeId::from_bytes(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  if (!id) return make_error(ErrorCode::invalid_argument, "{} must be 20 bytes, got {}", what, bytes.size());
  return *id;
}

void encode_entry(const raft::Entry& e, proto::RaftEntry& out) {
  out.set_term(e.term);
  out.set_index(e.index);
  out.set_kind(static_cast<std::uint32_t>(e.kind));
  out.set_data(e.data);
}

Result<raft::Entry> decode_entry(const proto::RaftEntry& in) {
  if (in.kind() > static_cast<std::uint32_t>(raft::Entry::Kind::config)) {
    return make_error(ErrorCode::invalid_argument, "a log entry of unknown kind {}", in.kind());
  }
  if (in.index() == 0) return make_error(ErrorCode::invalid_argument, "a log entry with index 0");
  return raft::Entry{in.term(), in.index(), static_cast<raft::Entry::Kind>(in.kind()), in.data()};
}

}  // namespace

proto::RaftMessage encode_raft(const NodeId& self, const HostPort& self_addr, const NodeId& to,
                               const raft::Message& message) {
  proto::RaftMessage out;
  out.set_from_id(id_bytes(self));
  out.set_from_addr(self_addr.to_string());
  out.set_to_id(id_bytes(to));
  out.set_term(raft::term_of(message));
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, raft::RequestVote>) {
          auto* body = out.mutable_request_vote();
          body->set_last_log_index(m.last_log_index);
          body->set_last_log_term(m.last_log_term);
          body->set_pre_vote(m.pre_vote);
          body->set_leadership_transfer(m.leadership_transfer);
        } else if constexpr (std::is_same_v<T, raft::RequestVoteReply>) {
          auto* body = out.mutable_request_vote_reply();
          body->set_granted(m.granted);
          body->set_pre_vote(m.pre_vote);
        } else if constexpr (std::is_same_v<T, raft::AppendEntries>) {
          auto* body = out.mutable_append();
          body->set_prev_log_index(m.prev_log_index);
          body->set_prev_log_term(m.prev_log_term);
          body->set_leader_commit(m.leader_commit);
          for (const auto& e : m.entries) encode_entry(e, *body->add_entries());
        } else if constexpr (std::is_same_v<T, raft::AppendEntriesReply>) {
          auto* body = out.mutable_append_reply();
          body->set_success(m.success);
          body->set_match_index(m.match_index);
          body->set_conflict_index(m.conflict_index);
          body->set_conflict_term(m.conflict_term);
        } else if constexpr (std::is_same_v<T, raft::TimeoutNow>) {
          out.mutable_timeout_now();
        } else if constexpr (std::is_same_v<T, raft::InstallSnapshot>) {
          auto* body = out.mutable_install_snapshot();
          body->set_last_index(m.last_index);
          body->set_last_term(m.last_term);
          for (const auto& v : m.voters) body->add_voters(id_bytes(v));
          body->set_total_bytes(m.total_bytes);
          body->set_offset(m.offset);
          body->set_data(m.data);
        } else if constexpr (std::is_same_v<T, raft::InstallSnapshotReply>) {
          auto* body = out.mutable_install_snapshot_reply();
          body->set_last_index(m.last_index);
          body->set_received(m.received);
          body->set_done(m.done);
        }
      },
      message);
  return out;
}

proto::RaftMessage encode_raft_hello(const NodeId& self, const HostPort& self_addr, const NodeId& to, bool leaving) {
  proto::RaftMessage out;
  out.set_from_id(id_bytes(self));
  out.set_from_addr(self_addr.to_string());
  out.set_to_id(id_bytes(to));
  out.mutable_hello()->set_leaving(leaving);
  return out;
}

Result<RaftInbound> decode_raft(const proto::RaftMessage& in, const NodeId& self) {
  auto from = id_from(in.from_id(), "the sender's node id");
  if (!from) return from.error();
  auto to = id_from(in.to_id(), "the addressee's node id");
  if (!to) return to.error();
  if (*to != self) {
    // Not malformed: the sender's record of who is at this address is old.
    return make_error(ErrorCode::not_found, "the message is for node {}, not this one", to->hex());
  }
  if (*from == self) return make_error(ErrorCode::invalid_argument, "the message claims to come from this node");
  auto addr = parse_host_port(in.from_addr(), false);
  if (!addr || in.from_addr().size() > 300) {
    return make_error(ErrorCode::invalid_argument, "the sender's address '{}' is not HOST:PORT",
                      in.from_addr().substr(0, 64));
  }
  const raft::Term term = in.term();
  std::optional<raft::Message> message;
  switch (in.body_case()) {
    case proto::RaftMessage::kRequestVote: {
      const auto& b = in.request_vote();
      message = raft::RequestVote{term, b.last_log_index(), b.last_log_term(), b.pre_vote(), b.leadership_transfer()};
      break;
    }
    case proto::RaftMessage::kRequestVoteReply:
      message = raft::RequestVoteReply{term, in.request_vote_reply().granted(), in.request_vote_reply().pre_vote()};
      break;
    case proto::RaftMessage::kAppend: {
      const auto& b = in.append();
      if (static_cast<std::size_t>(b.entries_size()) > kMaxRaftEntriesPerMessage) {
        return make_error(ErrorCode::invalid_argument, "{} log entries in one message (at most {})", b.entries_size(),
                          kMaxRaftEntriesPerMessage);
      }
      raft::AppendEntries append{term, b.prev_log_index(), b.prev_log_term(), {}, b.leader_commit()};
      append.entries.reserve(static_cast<std::size_t>(b.entries_size()));
      for (const auto& e : b.entries()) {
        auto entry = decode_entry(e);
        if (!entry) return entry.error();
        append.entries.push_back(std::move(*entry));
      }
      message = std::move(append);
      break;
    }
    case proto::RaftMessage::kAppendReply: {
      const auto& b = in.append_reply();
      message = raft::AppendEntriesReply{term, b.success(), b.match_index(), b.conflict_index(), b.conflict_term()};
      break;
    }
    case proto::RaftMessage::kTimeoutNow: message = raft::TimeoutNow{term}; break;
    case proto::RaftMessage::kInstallSnapshot: {
      const auto& b = in.install_snapshot();
      if (b.voters_size() == 0 || static_cast<std::size_t>(b.voters_size()) > kMaxRaftVoters) {
        return make_error(ErrorCode::invalid_argument, "a snapshot with {} voters", b.voters_size());
      }
      if (b.offset() > b.total_bytes() || b.data().size() > b.total_bytes() - b.offset()) {
        return make_error(ErrorCode::invalid_argument, "a snapshot chunk past the snapshot's end");
      }
      raft::InstallSnapshot install{term, b.last_index(), b.last_term(), {}, b.total_bytes(), b.offset(), b.data()};
      for (const auto& v : b.voters()) {
        auto id = id_from(v, "a voter's node id");
        if (!id) return id.error();
        install.voters.push_back(*id);
      }
      message = std::move(install);
      break;
    }
    case proto::RaftMessage::kInstallSnapshotReply: {
      const auto& b = in.install_snapshot_reply();
      message = raft::InstallSnapshotReply{term, b.last_index(), b.received(), b.done()};
      break;
    }
    case proto::RaftMessage::kHello: return RaftInbound{*from, *addr, std::nullopt, in.hello().leaving()};
    case proto::RaftMessage::BODY_NOT_SET:
      // Or with one a newer version added: not held against the sender.
      return make_error(ErrorCode::not_found, "a Raft message without a body this version knows");
  }
  return RaftInbound{*from, *addr, std::move(message), false};
}

}  // namespace p2pd::net
