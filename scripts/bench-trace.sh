#!/usr/bin/env bash
# Tracing benchmark (issue 6): what recording the causal trace costs. One
# pool of 3 peers on loopback is started again and again from the same
# state dirs and ports, in turns with tracing on (the default) and with
# --trace-capacity 0 (no clocks on messages, nothing recorded), so the same
# node ids, ring and stored blobs serve both modes. In each start the same
# sharded job runs a few times (after one warm-up); the turns go on, off,
# off, on, ... so drift in the machine's speed falls on both alike. Prints
# the median wall time of `p2pctl submit gemm --wait --out` for each mode
# and their ratio; the target is within 5%.
#
#   bash scripts/bench-trace.sh              # 2048x2048 in 3 shards, 6 starts x 4 jobs per mode
#   bash scripts/bench-trace.sh 1024 6 5     # N, starts per mode, jobs per start
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-2048}"
STARTS="${2:-6}"
JOBS="${3:-4}"
cmake --preset release >/dev/null
cmake --build --preset release --target p2pd p2pctl p2pd_gemm_bench -j "$(nproc)" >/dev/null
B=build/release
WORK="$(mktemp -d)"
PIDS=()
stop_pool() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
cleanup() {
  stop_pool
  rm -rf "$WORK"
}
trap cleanup EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# "p25 / median / p75" of the values on stdin.
quartiles() {
  sort -n | awk '{ v[NR] = $1 } END { q = int((NR + 3) / 4); printf "%.3f / %.3f / %.3f", v[q], v[int((NR + 1) / 2)], v[NR + 1 - q] }'
}
ctl() {
  local node=$1
  shift
  "$B/cli/p2pctl" --socket "$WORK/n$node.sock" "$@"
}

# Three free loopback ports, kept for every start.
read -r -a PORTS <<<"$(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')"

# The three share the machine's cores; more threads than cores would leave
# OpenBLAS's threads spinning against each other, which is noise.
THREADS=$(($(nproc) / 3 > 0 ? $(nproc) / 3 : 1))

# start_pool EXTRA_ARGS...: the 3 daemons, node 0 the bootstrap; returns
# once every node names the same leader and the pool has settled.
start_pool() {
  for i in 0 1 2; do
    local args=(--listen "127.0.0.1:${PORTS[$i]}" --control-socket "$WORK/n$i.sock" --state-dir "$WORK/n$i"
      --executor cpu --cpu-threads "$THREADS" --log-level warn "$@")
    [[ $i -gt 0 ]] && args+=(--bootstrap "127.0.0.1:${PORTS[0]}")
    "$B/daemon/p2pd" "${args[@]}" 2>>"$WORK/n$i.log" &
    PIDS+=($!)
    for _ in $(seq 1 100); do
      ctl "$i" status >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
  for _ in $(seq 1 300); do
    local leaders
    leaders=$(for i in 0 1 2; do
      ctl "$i" --json leader 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin).get("leader_id") or "-")' 2>/dev/null || echo "-"
    done | sort -u)
    [[ "$leaders" != "-" && $(echo "$leaders" | wc -l) -eq 1 ]] && break
    sleep 0.1
  done
  sleep 2  # every worker's first load reports reach the leader
}

run_job() {
  rm -f "$WORK/c.npy"
  local start end
  start=$(date +%s.%N)
  ctl 1 --timeout 600 submit gemm --a "$WORK/a.npy" --b "$WORK/b.npy" --shards 3 --wait --out "$WORK/c.npy" >/dev/null
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" 'BEGIN { print e - s }'
}

"$B/tests/p2pd_gemm_bench" inputs "$WORK" "$N" >/dev/null
echo "job: ${N}x${N} by ${N}x${N} float32 in 3 shards on 3 peers; $STARTS starts per mode, $JOBS jobs each"
ON=()
OFF=()
EVENTS=0
for turn in $(seq 1 $((2 * STARTS))); do
  # on, off, off, on, on, off, ...: each mode gets the early and late slots alike.
  if ((turn % 4 <= 1)); then mode=on; else mode=off; fi
  if [[ $mode == on ]]; then start_pool; else start_pool --trace-capacity 0; fi
  run_job >/dev/null  # warm-up: the first job after a start connects channels and fills caches
  times=()
  for _ in $(seq 1 "$JOBS"); do times+=("$(run_job)"); done
  if [[ $mode == on ]]; then
    ON+=("${times[@]}")
    EVENTS=$(ctl 0 --json trace | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["events"]))')
  else
    OFF+=("${times[@]}")
  fi
  printf 'start %d, tracing %-3s: %s s\n' "$turn" "$mode" "$(printf '%.3f ' "${times[@]}")"
  stop_pool
done
MON=$(printf '%s\n' "${ON[@]}" | median)
MOFF=$(printf '%s\n' "${OFF[@]}" | median)
printf '%d jobs per mode, p25 / median / p75: tracing on %s s, off %s s\n' "${#ON[@]}" \
  "$(printf '%s\n' "${ON[@]}" | quartiles)" "$(printf '%s\n' "${OFF[@]}" | quartiles)"
printf '%s events in the pool'"'"'s trace after the last traced start\n' "$EVENTS"
printf 'tracing cost (on / off, medians): %.3f (target <= 1.05)\n' "$(awk -v a="$MON" -v b="$MOFF" 'BEGIN { print a / b }')"
