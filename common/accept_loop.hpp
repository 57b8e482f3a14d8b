#pragma once
// Accepts connections on listening sockets, on a thread of its own, and
// hands each to a handler. The daemon accepts its connections itself (the
// control socket, the peer port) so it can see who connects before gRPC
// serves them: the caller's credentials, the number of connections from
// one address.

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/log.hpp"

namespace p2pd {

class AcceptLoop {
 public:
  // `fd`: connected, non-blocking, close-on-exec, now the handler's;
  // `listener`: which of the listening sockets took it.
  using Handler = std::function<void(int fd, int listener)>;

  // `listeners` are bound, listening and non-blocking; they stay the
  // caller's. `what` names them in log lines ("control socket").
  AcceptLoop(std::vector<int> listeners, std::string what, log::Category category);
  ~AcceptLoop();
  AcceptLoop(const AcceptLoop&) = delete;
  AcceptLoop& operator=(const AcceptLoop&) = delete;

  // Starts the thread; false when no eventfd could be made.
  bool start(Handler handler);
  // Wakes and joins the thread; a connection accepted before is not
  // touched. Idempotent.
  void stop();

 private:
  void run();

  std::vector<int> m_listeners;
  std::string m_what;
  log::Category m_category;
  int m_wake_fd = -1;  // eventfd: stop() wakes the poll
  Handler m_handler;
  std::thread m_thread;
};

}  // namespace p2pd
