#include "daemon/control/caller.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/grpc_fd_peer.hpp"

namespace p2pd::control {
namespace {

// Enough for any account or group entry; larger ones are reported by number.
constexpr std::size_t kDatabaseBufferBytes = 16 * 1024;
// SO_PEERGROUPS: first this many; a caller in more groups (NGROUPS_MAX is
// 65536) is read again with the size the kernel says it needs.
constexpr std::size_t kUsualPeerGroups = 64;
constexpr std::size_t kMaxPeerGroups = 65536;

std::vector<gid_t> read_peer_groups(int fd) {
#ifdef SO_PEERGROUPS
  std::vector<gid_t> groups(kUsualPeerGroups);
  for (int attempt = 0; attempt < 2; ++attempt) {
    socklen_t bytes = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &bytes) == 0) {
      groups.resize(bytes / sizeof(gid_t));
      return groups;
    }
    if (errno != ERANGE || bytes / sizeof(gid_t) > kMaxPeerGroups) break;
    groups.resize(bytes / sizeof(gid_t));  // the size the kernel needs
  }
#else
  (void)fd;
#endif
  return {};  // an old kernel: the primary group only
}

}  // namespace

Result<Caller> read_caller(int fd) {
  ucred credentials{};
  socklen_t size = sizeof credentials;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0 || size != sizeof credentials) {
    return make_error(ErrorCode::io, "cannot read the credentials of a control connection: {}", std::strerror(errno));
  }
  Caller caller;
  caller.pid = credentials.pid;
  caller.uid = credentials.uid;
  caller.gid = credentials.gid;
  caller.groups = read_peer_groups(fd);
  caller.user = user_name(caller.uid);
  return caller;
}

std::string user_name(uid_t uid) {
  std::array<char, kDatabaseBufferBytes> buffer{};
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr &&
      found->pw_name != nullptr && found->pw_name[0] != '\0') {
    return found->pw_name;
  }
  return fmt::format("uid {}", uid);
}

std::string group_name(gid_t gid) {
  std::array<char, kDatabaseBufferBytes> buffer{};
  group entry{};
  group* found = nullptr;
  if (::getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr &&
      found->gr_name != nullptr && found->gr_name[0] != '\0') {
    return found->gr_name;
  }
  return fmt::format("gid {}", gid);
}

bool may_use_control(const Caller& caller, uid_t owner, gid_t group) {
  if (caller.uid == owner || caller.uid == 0) return true;
  if (caller.gid == group) return true;
  return std::find(caller.groups.begin(), caller.groups.end(), group) != caller.groups.end();
}

std::string describe(const Caller& caller) {
  if (caller.user == fmt::format("uid {}", caller.uid)) return fmt::format("uid {} (pid {})", caller.uid, caller.pid);
  return fmt::format("{} (uid {}, pid {})", caller.user, caller.uid, caller.pid);
}

void CallerRegistry::remember(int fd, Caller caller) {
  std::lock_guard lock(m_mutex);
  m_by_fd[fd] = std::move(caller);
}

std::optional<Caller> CallerRegistry::find(std::string_view grpc_peer) const {
  const auto fd = fd_of_grpc_peer(grpc_peer);
  if (!fd) return std::nullopt;
  std::lock_guard lock(m_mutex);
  auto it = m_by_fd.find(*fd);
  if (it == m_by_fd.end()) return std::nullopt;
  return it->second;
}

}  // namespace p2pd::control
