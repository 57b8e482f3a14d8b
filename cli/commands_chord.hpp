#pragma once
// p2pctl's Chord commands: the ring, lookups, peers and the key-value store.
// Their specs (usage, help) are listed with the others in commands.cpp.

#include <cstddef>

#include "cli/cli_args.hpp"

namespace p2pd::cli {

// The largest value `put` sends: p2pd's own limit (1 MiB).
inline constexpr std::size_t kMaxValueBytes = 1 << 20;

int cmd_ring(const CliArgs& args);
int cmd_lookup(const CliArgs& args);
int cmd_peers(const CliArgs& args);
int cmd_put(const CliArgs& args);
int cmd_get(const CliArgs& args);
int cmd_leave(const CliArgs& args);

}  // namespace p2pd::cli
