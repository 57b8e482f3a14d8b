#pragma once
// systemd's service protocol (sd_notify(3), Type=notify): READY=1 once the
// node serves p2pctl and is in a pool, STATUS= one-line states for
// `systemctl status`, RELOADING=1 around SIGHUP, STOPPING=1 on the way out,
// and WATCHDOG=1 every half WatchdogSec while the io thread ticks. Outside
// systemd (no NOTIFY_SOCKET) every call does nothing. io thread only.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace p2pd::node {

class ServiceNotifier {
 public:
  using Clock = std::chrono::steady_clock;

  ServiceNotifier();

  // The service is up; sent once, with `status`.
  void ready(std::string_view status);
  [[nodiscard]] bool is_ready() const { return m_ready; }
  // A new one-line state; nothing is sent when it did not change.
  void status(std::string_view status);
  // Around a SIGHUP's reload, once ready and until stopping.
  void reloading();
  void reloaded();
  // Sent once; later calls do nothing.
  void stopping(std::string_view status);
  // Each tick: pings the watchdog when it is due.
  void tick(Clock::time_point now);
  // Half of WatchdogSec, or nullopt when systemd expects no pings.
  [[nodiscard]] std::optional<Clock::duration> watchdog_interval() const { return m_watchdog_interval; }

 private:
  void send(const std::string& state);

  bool m_ready = false;
  bool m_stopping = false;
  bool m_reloading = false;
  std::string m_status;
  std::optional<Clock::duration> m_watchdog_interval;
  Clock::time_point m_last_ping{};
};

}  // namespace p2pd::node
