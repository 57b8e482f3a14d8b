#include "daemon/net/dial_back.hpp"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <iterator>

#include "common/version.hpp"
#include "daemon/net/secure_channel.hpp"
#include "daemon/tls/secure_transport.hpp"
#include "proto/peer.grpc.pb.h"

namespace p2pd::net {

struct DialBacker::Dial {
  grpc::ClientContext context;
  proto::PingRequest request;
  proto::PingReply reply;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<proto::Peer::Stub> stub;
  std::chrono::steady_clock::time_point finished_at;
};

namespace {
constexpr std::chrono::seconds kFreeAfter{1};
}  // namespace

DialBacker::DialBacker(tls::SecureTransport& transport) : m_transport(transport) {}

DialBacker::~DialBacker() {
  // The server that owns us has shut down and waited for every call, and
  // every call waited for its dial, so nothing is in flight.
  // A callback that has answered its caller may still be returning: wait
  // for it before its dial (context, channel) and this object go.
  std::unique_lock lock(m_mutex);
  m_idle.wait(lock, [this] { return m_callbacks_running == 0; });
  m_finished.clear();
  m_in_flight.clear();
}

bool DialBacker::dial(const HostPort& target, const NodeId& expected, std::function<void(bool, std::string)> done) {
  std::vector<std::unique_ptr<Dial>> expired;
  Dial* dial = nullptr;
  {
    std::lock_guard lock(m_mutex);
    const auto now = std::chrono::steady_clock::now();
    auto keep = std::partition(m_finished.begin(), m_finished.end(),
                               [&](const std::unique_ptr<Dial>& d) { return now - d->finished_at < kFreeAfter; });
    std::move(keep, m_finished.end(), std::back_inserter(expired));
    m_finished.erase(keep, m_finished.end());
    if (m_in_flight.size() + m_finished.size() >= kMaxInFlight || m_busy_hosts.contains(target.host)) return false;
    m_busy_hosts.insert(target.host);
    ++m_callbacks_running;
    m_in_flight.push_back(std::make_unique<Dial>());
    dial = m_in_flight.back().get();
  }
  expired.clear();  // outside the lock, and not on a channel's callback thread

  grpc::ChannelArguments args;
  // A subchannel of our own: never a connection some other channel of this
  // process already has to that address.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // TLS, as every peer connection (secure_channel.hpp).
  const std::string proxy = route_through(m_transport, target.to_string(), args);
  dial->channel = grpc::CreateCustomChannel(proxy, grpc::InsecureChannelCredentials(), args);
  dial->stub = proto::Peer::NewStub(dial->channel);
  dial->context.set_deadline(std::chrono::system_clock::now() + kDialTimeout);
  dial->context.set_wait_for_ready(true);  // keep trying to connect until the deadline
  dial->request.set_version(kVersion);
  dial->stub->async()->Ping(&dial->context, &dial->request, &dial->reply,
                            [this, dial, expected, target, done = std::move(done)](grpc::Status status) {
                              bool reached = false;
                              std::string error;
                              if (!status.ok()) {
                                error = status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                                            ? fmt::format("no connection to {} within {} ms", target.to_string(),
                                                          kDialTimeout.count())
                                            : fmt::format("{}: {}", target.to_string(), status.error_message());
                              } else if (m_transport.proven_at(target.to_string()) != expected) {
                                // Who answered is what its key proved, not what it says.
                                error = fmt::format("another node answers at {}", target.to_string());
                              } else {
                                reached = true;
                              }
                              {
                                std::lock_guard lock(m_mutex);
                                auto it = std::find_if(m_in_flight.begin(), m_in_flight.end(),
                                                       [&](const std::unique_ptr<Dial>& d) { return d.get() == dial; });
                                if (it != m_in_flight.end()) {
                                  (*it)->finished_at = std::chrono::steady_clock::now();
                                  m_finished.push_back(std::move(*it));
                                  m_in_flight.erase(it);
                                }
                                m_busy_hosts.erase(target.host);
                              }
                              done(reached, std::move(error));
                              // Once the caller is answered the server may shut down; the
                              // destructor waits for this.
                              std::lock_guard lock(m_mutex);
                              if (--m_callbacks_running == 0) m_idle.notify_all();
                            });
  return true;
}

}  // namespace p2pd::net
