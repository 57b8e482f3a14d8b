#!/usr/bin/env bash
# Tracing benchmark (issue 6): what recording the causal trace costs. Two
# pools of 3 peers on loopback, one with tracing on (the default) and one
# with --trace-capacity 0 (no clocks on messages, nothing recorded), run the
# same sharded job in turns; the ratio of the median wall times of
# `p2pctl submit gemm --wait --out` is printed. The target is within 5%.
#
# The two pools are different daemons: which node leads and which worker
# gets which shard differ between them, and followers learn that a job is
# done with the leader's next heartbeat (up to 100 ms later). On jobs of a
# few hundred milliseconds that placement alone moves a median by tens of
# percent, so the default job is large enough (2048) for it not to decide
# the ratio; the per-message cost of tracing is the same at any size.
#
#   bash scripts/bench-trace.sh           # 2048x2048 in 3 shards, 9 runs each
#   bash scripts/bench-trace.sh 1024 15   # N, runs
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-2048}"
RUNS="${2:-9}"
cmake --preset release >/dev/null
cmake --build --preset release --target p2pd p2pctl p2pd_gemm_bench -j "$(nproc)" >/dev/null
B=build/release
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# start_pool NAME EXTRA_ARGS...: 3 daemons, the first the bootstrap.
start_pool() {
  local name=$1
  shift
  local first=""
  for i in 0 1 2; do
    local args=(--listen 127.0.0.1:0 --control-socket "$WORK/$name$i.sock" --state-dir "$WORK/$name$i" --executor cpu
      --log-level warn "$@")
    [[ -n "$first" ]] && args+=(--bootstrap "$first")
    "$B/daemon/p2pd" "${args[@]}" 2>"$WORK/$name$i.log" &
    PIDS+=($!)
    for _ in $(seq 1 100); do
      "$B/cli/p2pctl" --socket "$WORK/$name$i.sock" status >/dev/null 2>&1 && break
      sleep 0.1
    done
    if [[ -z "$first" ]]; then
      first=$("$B/cli/p2pctl" --socket "$WORK/${name}0.sock" --json status | python3 -c 'import json, sys; print(json.load(sys.stdin)["listen"])')
    fi
  done
  # A leader elected, then every worker's first heartbeats.
  for _ in $(seq 1 300); do
    leader=$("$B/cli/p2pctl" --socket "$WORK/${name}0.sock" --json leader 2>/dev/null |
      python3 -c 'import json, sys; print(json.load(sys.stdin).get("leader_id") or "")' 2>/dev/null || echo "")
    [[ -n "$leader" ]] && break
    sleep 0.1
  done
  sleep 3
}

"$B/tests/p2pd_gemm_bench" inputs "$WORK" "$N" >/dev/null
start_pool on
start_pool off --trace-capacity 0

run_job() {
  rm -f "$WORK/c.npy"
  local start end
  start=$(date +%s.%N)
  "$B/cli/p2pctl" --socket "$WORK/${1}1.sock" --timeout 600 submit gemm --a "$WORK/a.npy" --b "$WORK/b.npy" \
    --shards 3 --wait --out "$WORK/c.npy" >/dev/null
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" 'BEGIN { print e - s }'
}

echo "job: ${N}x${N} by ${N}x${N} float32 in 3 shards on 3 peers, $RUNS runs per pool, in turns"
run_job on >/dev/null  # warm-up, both pools
run_job off >/dev/null
ON=()
OFF=()
for run in $(seq 1 "$RUNS"); do
  ON+=("$(run_job on)")
  OFF+=("$(run_job off)")
  printf 'run %d: tracing on %.3f s, off %.3f s\n' "$run" "${ON[-1]}" "${OFF[-1]}"
done
MON=$(printf '%s\n' "${ON[@]}" | median)
MOFF=$(printf '%s\n' "${OFF[@]}" | median)
EVENTS=$("$B/cli/p2pctl" --socket "$WORK/on0.sock" --json trace | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["events"]))')
printf 'median: tracing on %.3f s, off %.3f s; %s events recorded in the traced pool\n' "$MON" "$MOFF" "$EVENTS"
printf 'tracing cost (on / off, medians): %.3f (target <= 1.05)\n' "$(awk -v a="$MON" -v b="$MOFF" 'BEGIN { print a / b }')"
