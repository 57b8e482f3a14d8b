#pragma once
// Who is on the other end of a control connection. The kernel says so
// (SO_PEERCRED, SO_PEERGROUPS), read once when the connection is accepted,
// so p2pctl cannot claim to be another user: jobs are attributed to the
// user the kernel names, and only the socket's owner, root and members of
// its group are served (the file mode already keeps others from connecting;
// this holds even where the mode is loosened, or an ACL lets others in).
// The credentials are those of whoever connected: a connected descriptor
// handed to another process keeps the connecting user's name.

#include <sys/types.h>

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace p2pd::control {

struct Caller {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;              // primary group at connect time
  std::vector<gid_t> groups;  // supplementary groups at connect time
  std::string user;           // the account name, or "uid N" when it has none
};

// The credentials of the process that connected `fd`, a unix stream socket.
Result<Caller> read_caller(int fd);

// The name of `uid` in the password database, or "uid N".
std::string user_name(uid_t uid);
// The name of `gid` in the group database, or "gid N".
std::string group_name(gid_t gid);

// The socket's owner (the daemon's user), root and members of the socket's
// group (primary or supplementary) may use the control socket.
bool may_use_control(const Caller& caller, uid_t owner, gid_t group);

// "alice (uid 1000, pid 4242)", for log lines.
std::string describe(const Caller& caller);

// The callers of live connections by descriptor, for the RPC handlers: gRPC
// names a connection it was handed by descriptor "fd:N" (ServerContext::peer).
// A descriptor number is reused only after gRPC closed the connection, and a
// new connection overwrites the entry before gRPC sees it.
class CallerRegistry {
 public:
  void remember(int fd, Caller caller);
  std::optional<Caller> find(std::string_view grpc_peer) const;

 private:
  mutable std::mutex m_mutex;
  std::map<int, Caller> m_by_fd;  // bounded by the process's descriptor limit
};

}  // namespace p2pd::control
