// systemd's notify protocol as p2pd speaks it, read off a NOTIFY_SOCKET the
// test owns: no READY=1 on a reload before start-up completed, one
// STOPPING=1, status lines only when they change.
#include <catch2/catch.hpp>

#include <string>

#include "daemon/node/service_notifier.hpp"
#include "tests/support/notify_socket.hpp"
#include "tests/support/scoped_env.hpp"
#include "tests/support/temp_dir.hpp"

using p2pd::node::ServiceNotifier;
using p2pd::test::NotifySocket;
using p2pd::test::ScopedEnv;

TEST_CASE("service notifier: READY once, reloads only while running, STOPPING once", "[unit][systemd]") {
  p2pd::test::TempDir dir;
  NotifySocket socket(dir.path() / "notify.sock");
  ScopedEnv notify("NOTIFY_SOCKET", (dir.path() / "notify.sock").c_str());
  ScopedEnv no_watchdog("WATCHDOG_USEC", nullptr);
  ServiceNotifier service;
  CHECK_FALSE(service.watchdog_interval());  // no WATCHDOG_USEC: no pings

  service.status("joining");
  CHECK(socket.drain() == "STATUS=joining");
  service.status("joining");  // unchanged: nothing sent
  CHECK(socket.drain().empty());
  service.reloading();  // a SIGHUP while starting: systemd must not see READY=1 yet
  service.reloaded();
  CHECK(socket.drain().empty());

  service.ready("in a pool");
  CHECK(socket.drain() == "READY=1\nSTATUS=in a pool");
  service.ready("in a pool again");  // once only
  CHECK(socket.drain().empty());
  service.reloading();
  service.reloaded();
  const std::string reload = socket.drain();
  CHECK(reload.starts_with("RELOADING=1\nMONOTONIC_USEC="));
  CHECK(reload.ends_with("|READY=1\nSTATUS=in a pool"));

  service.stopping("leaving");
  service.stopping("leaving again");
  service.reloading();  // after STOPPING=1: no reload, no READY=1
  service.reloaded();
  CHECK(socket.drain() == "STOPPING=1\nSTATUS=leaving");
}

TEST_CASE("service notifier: the watchdog is fed every half WatchdogSec", "[unit][systemd]") {
  p2pd::test::TempDir dir;
  NotifySocket socket(dir.path() / "notify.sock");
  ScopedEnv notify("NOTIFY_SOCKET", (dir.path() / "notify.sock").c_str());
  ScopedEnv watchdog("WATCHDOG_USEC", "2000000");
  ServiceNotifier service;
  REQUIRE(service.watchdog_interval());
  CHECK(*service.watchdog_interval() == std::chrono::seconds(1));
  const auto start = ServiceNotifier::Clock::now();
  service.tick(start);
  CHECK(socket.drain() == "WATCHDOG=1");
  service.tick(start + std::chrono::milliseconds(500));  // not yet due
  CHECK(socket.drain().empty());
  service.tick(start + std::chrono::milliseconds(1000));
  CHECK(socket.drain() == "WATCHDOG=1");
}
