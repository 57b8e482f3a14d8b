#!/usr/bin/env bash
# Raft election-time benchmark: builds the optimized tree and prints, from
# the simulator, how long five servers are without a leader after the
# leader crashes, for the election-timeout ranges of the Raft paper's
# Figure 16 (Ongaro & Ousterhout, USENIX ATC 2014, §9.3) beside the paper's
# figures, and for p2pd's own configuration.
#
#   bash scripts/bench-raft.sh         # the paper's 1000 trials per range
#   bash scripts/bench-raft.sh 0.1     # a tenth of the trials
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release >/dev/null
cmake --build --preset release --target p2pd_raft_bench -j "$(nproc)" >/dev/null
exec build/release/tests/p2pd_raft_bench "${1:-1}"
