// Hole punching: a node that reaches a peer through a relay tries a direct
// TCP connection to it (RFC 5128 section 3.3, simultaneous open; the
// exchange over the relay is libp2p's DCUtR). nat::PunchPlanner decides
// which peer and when; this file does the I/O of one attempt:
//   1. learn our punch port's public mapping: connect from a fresh port to a
//      public peer and ask how it sees us (Ping), holding that connection
//      open so the NAT keeps the mapping (RFC 5382 REQ-1);
//   2. PunchOffer through the relay: our mapping for theirs, which the peer
//      learns the same way; the round trip, less its preparation, is the
//      relay's;
//   3. PunchGo: the peer connects at once, we half a round trip later, both
//      from our punch ports to the other's mapping: each SYN opens our own
//      NAT for the other's, and the kernel's retransmissions cover the rest;
//   4. a Ping over the new connection must be answered by the peer's id;
//      then calls to the peer go over it (PeerClient::use_direct), and the
//      peer serves us on it as on any accepted connection.
// Each direction is punched by its caller, from ports of its own: one TCP
// connection carries gRPC calls one way only.

#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>

#include "common/log.hpp"
#include "daemon/net/punch_socket.hpp"
#include "daemon/node/node.hpp"

namespace p2pd::node {

namespace {

std::uint64_t new_punch_id() {
  std::uint64_t id = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&id), sizeof(id)) != 1) {
    id = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  return id;
}

// Where a peer may aim our punch: not this host, nor link-local, multicast
// or unspecified addresses (private ones may be a pool's own LAN).
bool is_punchable_address(const std::string& host) {
  boost::system::error_code ec;
  const auto ip = boost::asio::ip::make_address(host, ec);
  if (ec || ip.is_loopback() || ip.is_multicast() || ip.is_unspecified()) return false;
  if (ip.is_v4()) {
    const auto bytes = ip.to_v4().to_bytes();
    if (bytes[0] == 169 && bytes[1] == 254) return false;  // link-local
    if (bytes == std::array<unsigned char, 4>{255, 255, 255, 255}) return false;
    return true;
  }
  const auto v6 = ip.to_v6();
  return !v6.is_link_local() && !v6.is_v4_mapped();
}

std::uint32_t ms_since(std::chrono::steady_clock::time_point since) {
  return static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since).count());
}

}  // namespace

std::vector<std::string> Node::punch_wanted() const {
  std::vector<std::string> wanted;
  if (!m_ring_started || m_leaving || m_stopping || m_relay_stopped || !m_peer_client) return wanted;
  // Without a public peer to tell us our mapping there is nothing to offer
  // (a public node alone with its relayed peers calls them through the
  // relay it is itself).
  if (!punch_helper()) return wanted;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [id, seen] : m_peers_seen) {
    if (wanted.size() >= kMaxPunchedPeers) break;
    if (!seen.relayed || now - seen.last_seen > kLearnerFreshness || seen.addr == m_chord_self.addr) continue;
    wanted.push_back(seen.addr);
  }
  return wanted;
}

std::optional<HostPort> Node::punch_helper() const {
  // Any public peer will do; the relay we use is one, and already called.
  if (m_relay_peer) return m_relay_peer;
  for (const auto& candidate : relay_candidates()) {
    auto said = m_peer_reachability.find(candidate.to_string());
    if (said != m_peer_reachability.end() && said->second == "public") return candidate;
  }
  return std::nullopt;
}

void Node::tick_punch() {
  if (m_ticks % kPunchTickEvery != 0 || !m_peer_client) return;
  step_punch(m_ticks % kPunchHealthTicks == 0);
}

void Node::step_punch(bool check_health) {
  const auto wanted = punch_wanted();
  for (const auto& broken : m_peer_client->prune_direct()) {
    // A report about a channel already replaced (p2pctl punch) is stale.
    if (m_peer_client->has_direct(broken.peer)) continue;
    log::info(log::Category::net, "the direct connection to {} broke ({}); calls go through its relay again",
              broken.peer.to_string(), broken.why);
    m_punch_planner.on_lost(broken.peer.to_string(), m_ticks);
  }
  // Offers whose PunchGo never came.
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(m_punch_responses, [&](const auto& entry) { return now > entry.second.expires; });
  for (const auto& start : m_punch_planner.tick(m_ticks, wanted)) start_punch(start.peer, start.attempt);
  // Direct channels only to peers the planner holds as punched (relayed
  // peers we still talk to); the others (gone, or reachable now) are dropped.
  for (const auto& peer : m_peer_client->direct_peers()) {
    auto planned = m_punch_planner.peers().find(peer.to_string());
    if (planned == m_punch_planner.peers().end() || planned->second.state != nat::PunchPlanner::State::punched) {
      m_peer_client->drop_direct(peer);
    } else if (check_health) {
      check_direct(peer);
    }
  }
  std::erase_if(m_punch_rtt_ms, [&](const auto& entry) { return !m_punch_planner.peers().contains(entry.first); });
  answer_punch_waiters();
}

void Node::check_direct(const HostPort& peer) {
  // A NAT that forgets a mapping drops packets without a word: a ping now
  // and then finds out (and keeps the mapping fresh) before a protocol
  // call is lost to it.
  auto channel = m_peer_client->direct_channel(peer);
  if (!channel) return m_punch_planner.on_lost(peer.to_string(), m_ticks);
  m_peer_client->ping_over(channel, peer, kPunchPingTimeout, [this, peer, channel](Result<net::PingResult> pong) {
    if (m_stopping || m_peer_client->direct_channel(peer) != channel) return;
    // The node at the address may have changed (a peer rejoined through
    // the same relay port): the channel must reach the one announced there.
    std::string why;
    if (!pong) {
      why = pong.error().message;
    } else {
      auto announced = std::find_if(m_peers_seen.begin(), m_peers_seen.end(),
                                    [&](const auto& entry) { return entry.second.addr == peer.to_string(); });
      if (announced != m_peers_seen.end() && announced->first != pong->node_id) {
        why = fmt::format("it reaches {}, not {}", pong->node_id.short_hex(), announced->first.short_hex());
      }
    }
    if (why.empty()) return;
    m_peer_client->drop_direct(peer);
    m_punch_planner.on_lost(peer.to_string(), m_ticks);
    log::info(log::Category::net, "the direct connection to {} is no good ({}); calls go through its relay again",
              peer.to_string(), why);
  });
}

void Node::start_punch(const std::string& peer_addr, std::uint32_t attempt) {
  auto fail = [this, peer_addr](std::string why) {
    boost::asio::post(m_io, [this, peer_addr, why = std::move(why)]() mutable {
      finish_punch(peer_addr, make_error(ErrorCode::unavailable, "{}", why));
    });
  };
  auto peer = parse_host_port(peer_addr, false);
  std::optional<NodeId> peer_id;
  for (const auto& [id, seen] : m_peers_seen) {
    if (seen.addr == peer_addr) peer_id = id;
  }
  const auto helper = punch_helper();
  if (!peer || !peer_id) return fail("the peer is no longer known");
  if (!helper) return fail("no public peer to learn our public address from");
  log::debug(log::Category::net, "punch: attempt {} to {} (our mapping from {})", attempt, peer_addr,
             helper->to_string());
  auto punch = std::make_shared<PunchAttempt>();
  punch->id = new_punch_id();
  punch->peer = *peer;
  punch->peer_id = *peer_id;
  punch->started = std::chrono::steady_clock::now();
  learn_mapping(*helper, [this, punch](Result<PunchMapping> mapping) {
    if (!mapping) return finish_punch(punch->peer.to_string(), mapping.error());
    punch->mapping = std::move(*mapping);
    const auto offered = std::chrono::steady_clock::now();
    m_peer_client->punch_offer(
        punch->peer, punch->id, punch->mapping.public_addr, kPunchOfferTimeout,
        [this, punch, offered](Result<net::PunchAnswer> answer) {
          if (!answer) return finish_punch(punch->peer.to_string(), answer.error());
          if (!is_punchable_address(answer->addr.host)) {
            return finish_punch(punch->peer.to_string(),
                                make_error(ErrorCode::corrupt, "the peer named {} as its address, not one to punch to",
                                           answer->addr.host));
          }
          // The relay's round trip, without the peer's own preparation.
          const std::uint32_t elapsed = ms_since(offered);
          punch->rtt_ms = std::clamp<std::uint32_t>(elapsed - std::min(elapsed, answer->prepare_ms), 1, 5000);
          punch->their_addr = answer->addr;
          m_peer_client->punch_go(punch->peer, punch->id, kPunchOfferTimeout, [punch](Result<void> went) {
            if (!went)
              log::debug(log::Category::net, "punch: {} did not take the go: {}", punch->peer.to_string(),
                         went.error().message);
          });
          // Our SYN leaves when the peer's does: the go takes half a round trip to arrive.
          auto timer = std::make_shared<boost::asio::steady_timer>(m_io);
          timer->expires_after(std::chrono::milliseconds(punch->rtt_ms / 2));
          timer->async_wait([this, punch, timer](const boost::system::error_code& ec) {
            if (ec || m_stopping) return;
            connect_punched(punch);
          });
        });
  });
}

void Node::learn_mapping(const HostPort& helper, std::function<void(Result<PunchMapping>)> done) {
  net::connect_from(
      m_io, 0, helper, kPunchConnectTimeout,
      [this, helper, done = std::move(done)](Result<net::ConnectedSocket> socket) mutable {
        if (!socket) return done(socket.error());
        if (m_stopping || !m_peer_client) {
          ::close(socket->fd);
          return done(make_error(ErrorCode::unavailable, "shutting down"));
        }
        const std::uint16_t local_port = socket->local_port;
        m_peer_client->channel_over(
            socket->fd, helper, std::nullopt,
            [this, helper, local_port, done = std::move(done)](Result<net::PeerClient::DirectChannel> channel) mutable {
              if (!channel) return done(channel.error());
              if (m_stopping || !m_peer_client) return done(make_error(ErrorCode::unavailable, "shutting down"));
              PunchMapping mapping;
              mapping.local_port = local_port;
              mapping.observer = *channel;
              m_peer_client->ping_over(
                  *channel, helper, kPunchPingTimeout,
                  [helper, mapping = std::move(mapping), done = std::move(done)](Result<net::PingResult> pong) mutable {
                    if (!pong) return done(pong.error());
                    if (!pong->observed || !is_ip_literal(pong->observed->host)) {
                      return done(make_error(ErrorCode::unavailable, "{} did not say where it sees us from",
                                             helper.to_string()));
                    }
                    mapping.public_addr = *pong->observed;
                    done(std::move(mapping));
                  });
            });
      });
}

void Node::connect_punched(const std::shared_ptr<PunchAttempt>& punch) {
  net::connect_from(m_io, punch->mapping.local_port, punch->their_addr, kPunchConnectTimeout,
                    [this, punch](Result<net::ConnectedSocket> socket) {
                      if (!socket) return finish_punch(punch->peer.to_string(), socket.error());
                      if (m_stopping || !m_peer_client) {
                        ::close(socket->fd);
                        return;
                      }
                      // Whoever answers must be the peer: a stale mapping could lead
                      // anywhere. The handshake proves its key; the ping, that it serves.
                      m_peer_client->channel_over(socket->fd, punch->peer, punch->peer_id,
                                                  [this, punch](Result<net::PeerClient::DirectChannel> made) {
                                                    if (!made)
                                                      return finish_punch(punch->peer.to_string(), made.error());
                                                    if (m_stopping || !m_peer_client) return;
                                                    ping_punched(punch, *made);
                                                  });
                    });
}

void Node::ping_punched(const std::shared_ptr<PunchAttempt>& punch, net::PeerClient::DirectChannel channel) {
  m_peer_client->ping_over(
      channel, punch->peer, kPunchPingTimeout, [this, punch, channel](Result<net::PingResult> pong) {
        if (!pong) return finish_punch(punch->peer.to_string(), pong.error());
        if (pong->node_id != punch->peer_id) {
          return finish_punch(punch->peer.to_string(),
                              make_error(ErrorCode::corrupt, "another node ({}) answered at {}",
                                         pong->node_id.short_hex(), punch->their_addr.to_string()));
        }
        m_peer_client->use_direct(punch->peer, channel);
        m_punch_rtt_ms[punch->peer.to_string()] = punch->rtt_ms;
        log::info(log::Category::net, "punched a direct connection to {} at {} ({} ms, relay round trip {} ms)",
                  punch->peer_id.short_hex(), punch->their_addr.to_string(), ms_since(punch->started), punch->rtt_ms);
        trace_local(fmt::format("punch: direct connection to {}", punch->peer_id.short_hex()));
        finish_punch(punch->peer.to_string(), {});
      });
}

void Node::finish_punch(const std::string& peer_addr, Result<void> outcome) {
  if (m_stopping) return;
  if (!outcome) {
    log::debug(log::Category::net, "punch: no direct connection to {}: {}", peer_addr, outcome.error().message);
  }
  const bool round_over =
      m_punch_planner.on_result(peer_addr, outcome.has_value(), outcome ? "" : outcome.error().message, m_ticks);
  if (round_over && !outcome) {
    log::info(log::Category::net, "no direct connection to {} ({}); calls stay on its relay", peer_addr,
              outcome.error().message);
  }
  if (round_over) answer_punch_waiters();
}

void Node::on_punch_offer(net::PunchOfferIn offer, std::function<void(Result<net::PunchAnswerOut>)> done) {
  boost::asio::post(m_io, [this, offer = std::move(offer), done = std::move(done)]() mutable {
    if (m_stopping || m_relay_stopped || !m_peer_client) {
      return done(make_error(ErrorCode::invalid_argument, "this node is shutting down"));
    }
    // Only a node peers reach through a relay is punched to; and a peer
    // may not aim our connects at this host, its network's broadcast or
    // multicast, nor anything but an address on the internet's side.
    if (!announced_through_relay()) {
      return done(make_error(ErrorCode::invalid_argument, "this node is not reached through a relay"));
    }
    if (!is_punchable_address(offer.addr.host)) {
      return done(make_error(ErrorCode::invalid_argument, "{} is not an address to punch to", offer.addr.host));
    }
    // A few offers at a time, each holding a connect for a few seconds,
    // and a few a second: a peer cannot make us connect to many addresses.
    const auto now = std::chrono::steady_clock::now();
    if (now - m_punch_offer_window >= kPunchOfferWindow) {
      m_punch_offer_window = now;
      m_punch_offers_in_window = 0;
    }
    if (m_punch_responses.size() + m_punch_preparing.size() + m_punch_connecting >= kMaxPunchResponses) {
      return done(make_error(ErrorCode::unavailable, "too many punches in flight"));
    }
    if (m_punch_offers_in_window >= kMaxPunchOffersPerWindow) {
      return done(make_error(ErrorCode::unavailable, "too many punch offers lately"));
    }
    const auto helper = punch_helper();
    if (!helper) return done(make_error(ErrorCode::invalid_argument, "no public peer to learn our address from"));
    ++m_punch_offers_in_window;
    // Answered once: here, or at shutdown (PeerServer's shutdown waits for it).
    const std::uint64_t ticket = ++m_punch_offer_tickets;
    m_punch_preparing.emplace(ticket, std::move(done));
    learn_mapping(*helper, [this, offer, started = now, ticket](Result<PunchMapping> mapping) mutable {
      auto pending = m_punch_preparing.find(ticket);
      if (pending == m_punch_preparing.end()) return;  // answered at shutdown
      auto answer_done = std::move(pending->second);
      m_punch_preparing.erase(pending);
      if (!mapping) return answer_done(make_error(ErrorCode::invalid_argument, "{}", mapping.error().message));
      net::PunchAnswerOut answer{mapping->public_addr, ms_since(started)};
      PunchResponse response{offer.caller, offer.addr, std::move(*mapping),
                             std::chrono::steady_clock::now() + kPunchResponseLifetime};
      m_punch_responses.insert_or_assign(offer.punch_id, std::move(response));
      answer_done(answer);
    });
  });
}

void Node::on_punch_go(const NodeId& caller, std::uint64_t punch_id, std::function<void(Result<void>)> done) {
  boost::asio::post(m_io, [this, caller, punch_id, done = std::move(done)] {
    auto it = m_punch_responses.find(punch_id);
    if (it == m_punch_responses.end() || it->second.caller != caller || m_stopping || m_relay_stopped) {
      return done(make_error(ErrorCode::not_found, "no punch offer {} from this caller", punch_id));
    }
    auto response = std::make_shared<PunchResponse>(std::move(it->second));
    m_punch_responses.erase(it);
    done({});
    ++m_punch_connecting;
    net::connect_from(m_io, response->mapping.local_port, response->caller_addr, kPunchConnectTimeout,
                      [this, response](Result<net::ConnectedSocket> socket) {
                        --m_punch_connecting;
                        if (!socket) {
                          log::debug(log::Category::net, "punch: no connection from {}: {}",
                                     response->caller.short_hex(), socket.error().message);
                          return;
                        }
                        // The caller is the client on it; we serve it (the relay stopping
                        // flag also says the peer server is about to shut down).
                        if (m_peer_server && !m_relay_stopped) {
                          m_peer_server->add_connection(socket->fd, response->caller);
                          log::debug(log::Category::net, "punch: serving {} on a direct connection",
                                     response->caller.short_hex());
                        } else {
                          ::close(socket->fd);
                        }
                      });
  });
}

void Node::answer_punch_waiters() {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = m_punch_waiters.begin(); it != m_punch_waiters.end();) {
    auto peer = m_punch_planner.peers().find(it->addr);
    const bool over = peer == m_punch_planner.peers().end() ||
                      peer->second.state == nat::PunchPlanner::State::punched ||
                      peer->second.state == nat::PunchPlanner::State::failed;
    if (!over && now < it->deadline) {
      ++it;
      continue;
    }
    control::PunchView view;
    view.node_id = it->node_id;
    view.addr = it->addr;
    view.elapsed_ms = ms_since(it->started);
    if (peer != m_punch_planner.peers().end()) view.attempts = peer->second.attempt;
    if (peer != m_punch_planner.peers().end() && peer->second.state == nat::PunchPlanner::State::punched) {
      view.result = "punched";
      if (auto rtt = m_punch_rtt_ms.find(it->addr); rtt != m_punch_rtt_ms.end()) view.rtt_ms = rtt->second;
    } else {
      view.result = "failed";
      if (peer != m_punch_planner.peers().end() && peer->second.state == nat::PunchPlanner::State::failed) {
        view.attempts = nat::PunchPlanner::kAttemptsPerRound;
      }
      view.error = peer == m_punch_planner.peers().end() ? "the peer is no longer relayed"
                   : !over                               ? "no result in time"
                                                         : peer->second.last_error;
    }
    auto waiter_done = std::move(it->done);
    it = m_punch_waiters.erase(it);
    waiter_done(std::move(view));
  }
}

void Node::punch(std::string peer, std::function<void(Result<control::PunchView>)> done) {
  boost::asio::post(m_io, [this, peer = std::move(peer), done = std::move(done)]() mutable {
    std::optional<NodeId> id;
    const PeerSeen* seen = nullptr;
    for (const auto& [peer_id, entry] : m_peers_seen) {
      if (peer_id.hex() == peer || entry.addr == peer) {
        id = peer_id;
        seen = &entry;
      }
    }
    if (!seen) return done(make_error(ErrorCode::not_found, "no peer {} known here (see p2pctl peers)", peer));
    if (!seen->relayed) {
      return done(make_error(ErrorCode::invalid_argument,
                             "{} is reached directly, not through a relay: there is nothing to punch", peer));
    }
    const auto wanted = punch_wanted();
    if (std::find(wanted.begin(), wanted.end(), seen->addr) == wanted.end()) {
      return done(
          make_error(ErrorCode::unavailable, "{} has not been heard from lately, or this node is leaving", peer));
    }
    if (m_punch_waiters.size() >= kMaxPunchWaiters) {
      return done(make_error(ErrorCode::unavailable, "too many punch requests waiting"));
    }
    // A fresh attempt: the direct connection we may have is dropped first.
    if (auto addr = parse_host_port(seen->addr, false)) m_peer_client->drop_direct(*addr);
    m_punch_planner.request(seen->addr, m_ticks);
    m_punch_waiters.push_back(PunchWaiter{id->hex(), seen->addr, std::chrono::steady_clock::now(),
                                          std::chrono::steady_clock::now() + kPunchWaitLimit, std::move(done)});
    step_punch(false);  // now, not at the next punch tick
  });
}

}  // namespace p2pd::node
