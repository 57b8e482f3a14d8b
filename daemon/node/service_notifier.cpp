#include "daemon/node/service_notifier.hpp"

#include <systemd/sd-daemon.h>

#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "common/log.hpp"
#include "common/one_line.hpp"

namespace p2pd::node {

ServiceNotifier::ServiceNotifier() {
  std::uint64_t usec = 0;
  // > 0 only when WatchdogSec is set and WATCHDOG_PID names this process.
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    m_watchdog_interval = std::chrono::microseconds(usec / 2);
  }
}

void ServiceNotifier::send(const std::string& state) {
  if (const int sent = sd_notify(0, state.c_str()); sent < 0) {
    log::debug(log::Category::node, "sd_notify failed: {}", std::strerror(-sent));
  }
}

void ServiceNotifier::ready(std::string_view status) {
  if (m_ready) return;
  m_ready = true;
  m_status = one_line(status);
  send("READY=1\nSTATUS=" + m_status);
}

void ServiceNotifier::status(std::string_view status) {
  std::string line = one_line(status);
  if (line == m_status) return;
  m_status = std::move(line);
  send("STATUS=" + m_status);
}

void ServiceNotifier::reloading() {
  // Not before READY=1 (it would end the start-up early) nor after
  // STOPPING=1: systemd knows no reload in those states.
  if (!m_ready || m_stopping) return;
  m_reloading = true;
  // MONOTONIC_USEC: systemd 253 and later match a reload to it.
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const auto usec = static_cast<std::uint64_t>(now.tv_sec) * 1000000u + static_cast<std::uint64_t>(now.tv_nsec) / 1000u;
  send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=re-reading the configuration", usec));
}

void ServiceNotifier::reloaded() {
  if (!m_reloading) return;
  m_reloading = false;
  if (!m_stopping) send("READY=1\nSTATUS=" + m_status);
}

void ServiceNotifier::stopping(std::string_view status) {
  if (m_stopping) return;
  m_stopping = true;
  m_status = one_line(status);
  send("STOPPING=1\nSTATUS=" + m_status);
}

void ServiceNotifier::tick(Clock::time_point now) {
  if (!m_watchdog_interval || now - m_last_ping < *m_watchdog_interval) return;
  m_last_ping = now;
  send("WATCHDOG=1");
}

}  // namespace p2pd::node
