#pragma once
// Whether something accepts connections on a unix stream socket: the daemon
// asks before replacing a stale control socket, p2pctl to explain a failure.

#include <filesystem>

namespace p2pd {

// 0 when a connect() succeeds, else the errno of the attempt: ECONNREFUSED
// (nobody listens), EAGAIN (a listener with a full backlog), ENAMETOOLONG (a
// path that does not fit sockaddr_un), ...
int probe_unix_socket(const std::filesystem::path& path);

}  // namespace p2pd
