#pragma once
// Several test daemons in one temp dir, indexed in start order: who they
// are, where they listen, which are alive. The integration suites build
// their pools (Chord, Raft) on it.

#include <fmt/format.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/temp_dir.hpp"
#include "tests/support/test_daemon.hpp"

namespace p2pd::test {

struct DaemonPool {
  TempDir dir;
  std::vector<std::unique_ptr<TestDaemon>> daemons;
  std::vector<bool> alive;
  std::vector<std::string> ids;     // by daemon index
  std::vector<std::string> listen;  // by daemon index: where it serves now

  // Starts one more daemon, n<index>, with `args`; false when it does not come up.
  // `env`: NAME=VALUE pairs added to its environment.
  bool add(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    daemons.push_back(std::make_unique<TestDaemon>(dir.path(), fmt::format("n{}", daemons.size()), std::move(args)));
    for (const auto& assignment : env) daemons.back()->add_env(assignment);
    if (!daemons.back()->start()) return false;
    const auto status = daemons.back()->status_json();
    listen.push_back(status["listen"].get<std::string>());
    ids.push_back(status["node_id"].get<std::string>());
    alive.push_back(true);
    return true;
  }

  [[nodiscard]] std::vector<std::size_t> live() const {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < daemons.size(); ++i) {
      if (alive[i]) out.push_back(i);
    }
    return out;
  }

  void kill(std::size_t i) {
    daemons[i]->kill();
    alive[i] = false;
  }
};

}  // namespace p2pd::test
