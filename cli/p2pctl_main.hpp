#pragma once

namespace p2pd::cli {

// p2pctl's whole life; returns the exit code (0 ok, 1 failed, 2 usage).
int run_p2pctl(int argc, char** argv);

}  // namespace p2pd::cli
