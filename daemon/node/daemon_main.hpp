#pragma once

namespace p2pd::node {

// p2pd's whole life: parse options, take the state dir, load the identity,
// pick the executor, serve, and shut down cleanly. Returns the exit code
// (CONTRACT.md: 0 ok, 1 failed operation, 2 bad usage).
int run_daemon(int argc, char** argv);

}  // namespace p2pd::node
