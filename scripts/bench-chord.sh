#!/usr/bin/env bash
# Chord path-length benchmark: builds the optimized tree and prints the
# simulator's mean/1st/99th-percentile lookup path for N = 2^3..2^12 nodes
# beside the paper's ½·log2 N (Stoica et al., SIGCOMM 2001, Fig. 10a), once
# with fingers only (the paper's routing) and once with p2pd's default
# (fingers + successor list). Ratio = mean / (½·log2 N).
#
#   bash scripts/bench-chord.sh              # N up to 2^12, 2000 lookups per row
#   bash scripts/bench-chord.sh 10 500       # N up to 2^10, 500 lookups per row
set -euo pipefail
cd "$(dirname "$0")/.."
max_exponent=${1:-12}
lookups=${2:-2000}
cmake --preset release >/dev/null
cmake --build --preset release --target p2pd_chord_bench -j "$(nproc)" >/dev/null
exec build/release/tests/p2pd_chord_bench "$max_exponent" "$lookups"
