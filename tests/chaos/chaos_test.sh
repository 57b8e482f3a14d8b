#!/usr/bin/env bash
# Chaos (issue 9): five p2pd on a LAN of network namespaces (10.77.0.1-5)
# run jobs submitted in a loop on node 1 while, one fault at a time, the
# other nodes are SIGKILLed and restarted (same state dir: same identity,
# same Raft log), paused (SIGSTOP, then SIGCONT) or cut off (their link
# down), for SECONDS. Then every fault is healed and every job the pool
# accepted must end done with the right product (checked here against
# A @ B), be in every node's replicated job table (no committed Raft entry
# lost), and no daemon may have died unless we killed it.
# Usage: chaos_test.sh P2PD P2PCTL [SECONDS] [SEED]
set -euo pipefail
P2PD="$1" P2PCTL="$2" DURATION="${3:-300}" SEED="${4:-$$}"
HERE="$(cd "$(dirname "$0")" && pwd)"
# The faults, then at most 120 s per accepted job check: ctest's TIMEOUT
# must stay above this (cleanup runs only when the script is not killed).
TB_DEADLINE_S=$((DURATION + 600))
source "$HERE/../netns/testbed.sh"
testbed_require ip
RANDOM="$SEED"
NODES=5
echo "chaos: $NODES nodes, ${DURATION} s, seed $SEED (chaos_test.sh P2PD P2PCTL $DURATION $SEED replays these faults)"

tb_begin
ip netns add "${TB}lan"
TB_NAMESPACES+=("${TB}lan")
ip -n "${TB}lan" link add br0 type bridge
ip -n "${TB}lan" link set br0 up
for i in $(seq 1 $NODES); do
  TB_NAMESPACES+=("${TB}n$i")
  ip netns add "${TB}n$i"
  ip -n "${TB}n$i" link set lo up
  tb_link "${TB}n$i" eth0 "${TB}lan" "n$i"
  ip -n "${TB}lan" link set "n$i" master br0
  ip -n "${TB}n$i" addr add "10.77.0.$i/24" dev eth0
done

declare -A PID
start_node() {  # I
  local i="$1" name="n$1"
  mkdir -p "$TB_DIR/$name"
  [[ " ${TB_NODES[*]} " == *" $name "* ]] || TB_NODES+=("$name")
  local bootstrap=()
  [ "$i" = 1 ] || bootstrap=(--bootstrap 10.77.0.1:7420)
  ip netns exec "${TB}$name" "$P2PD" --state-dir "$TB_DIR/$name/state" --control-socket "$TB_DIR/$name/sock" \
    --listen "10.77.0.$i:7420" "${bootstrap[@]}" --port-mapping off --cpu-threads 1 --raft-election-timeout 500 \
    --raft-heartbeat 50 >>"$TB_DIR/$name/log" 2>&1 &
  PID[$i]=$!
  TB_PIDS+=($!)
  disown $!
}
for i in $(seq 1 $NODES); do
  start_node "$i"
  [ "$i" = 1 ] && { tb_wait 30 "node 1 answers" tb_ctl n1 status >/dev/null || tb_fail "node 1 did not start"; }
done
tb_wait 90 "5 voters" sh -c "[ \"\$('$P2PCTL' --socket '$TB_DIR/n1/sock' --json leader | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"voters\"]))')\" -ge $NODES ]" ||
  tb_fail "the pool did not reach $NODES voters"
echo "pool up: $NODES voters, leader $(tb_json n1 leader "['leader_id']" | cut -c1-12)"

python3 "$HERE/../netns/gemm_npy.py" make "$TB_DIR/a.npy" "$TB_DIR/b.npy" 96 64 48 11

# The load: jobs submitted one after another on node 1, for the whole run.
: >"$TB_DIR/accepted" >"$TB_DIR/refused"
(
  exec </dev/null >/dev/null 2>&1
  while [ ! -e "$TB_DIR/stop-load" ]; do
    if out="$("$P2PCTL" --socket "$TB_DIR/n1/sock" --timeout 30 --json submit gemm --a "$TB_DIR/a.npy" \
      --b "$TB_DIR/b.npy" --shards 4)"; then
      python3 -c 'import json,sys; print(json.loads(sys.argv[1])["job_id"])' "$out" >>"$TB_DIR/accepted"
    else
      echo "$out" >>"$TB_DIR/refused"
      sleep 1
    fi
  done
) &
LOAD=$!
TB_PIDS+=("$LOAD")

# The faults: one at a time, on nodes 2-5.
kills=0 pauses=0 partitions=0
start=$SECONDS
end=$((SECONDS + DURATION))
while [ "$SECONDS" -lt "$end" ]; do
  victim=$((2 + RANDOM % (NODES - 1)))
  case $((RANDOM % 3)) in
    0)
      kill -KILL "${PID[$victim]}" || tb_fail "node $victim died on its own"
      # Its pid may be reused: cleanup must not signal it.
      keep=()
      for pid in "${TB_PIDS[@]}"; do [ "$pid" = "${PID[$victim]}" ] || keep+=("$pid"); done
      TB_PIDS=("${keep[@]}")
      kills=$((kills + 1))
      echo "$((SECONDS - start)) s: SIGKILL node $victim; restart in 5 s"
      sleep 5
      start_node "$victim"
      ;;
    1)
      kill -STOP "${PID[$victim]}" || tb_fail "node $victim died on its own"
      pauses=$((pauses + 1))
      echo "$((SECONDS - start)) s: SIGSTOP node $victim for 5 s"
      sleep 5
      kill -CONT "${PID[$victim]}" || tb_fail "node $victim died on its own"
      ;;
    2)
      ip -n "${TB}n$victim" link set eth0 down
      partitions=$((partitions + 1))
      echo "$((SECONDS - start)) s: node $victim cut off for 8 s"
      sleep 8
      ip -n "${TB}n$victim" link set eth0 up
      ;;
  esac
  sleep 3
done
touch "$TB_DIR/stop-load"
wait "$LOAD" || true
accepted=$(wc -l <"$TB_DIR/accepted")
refused=$(grep -c . "$TB_DIR/refused" || true)
echo "chaos over after ${DURATION} s: $kills kills, $pauses pauses, $partitions partitions;" \
  "$accepted jobs accepted, $refused submissions refused"

# Nobody died on their own.
for i in $(seq 1 $NODES); do
  kill -0 "${PID[$i]}" 2>/dev/null || tb_fail "node $i died on its own"
done
! grep -l "Sanitizer\|terminate called\|Aborted" "$TB_DIR"/n*/log || tb_fail "a daemon reported a crash"

# Every accepted job ends done, with the right product.
done_jobs=0
while read -r job; do
  if ! "$P2PCTL" --socket "$TB_DIR/n1/sock" --timeout 120 wait "$job" >/dev/null 2>"$TB_DIR/err" ||
    ! "$P2PCTL" --socket "$TB_DIR/n1/sock" --timeout 60 result "$job" --out "$TB_DIR/c.npy" >/dev/null 2>"$TB_DIR/err"; then
    tb_fail "job $job: $(cat "$TB_DIR/err")"
  fi
  python3 "$HERE/../netns/gemm_npy.py" check "$TB_DIR/a.npy" "$TB_DIR/b.npy" "$TB_DIR/c.npy" >/dev/null ||
    tb_fail "job $job: wrong product"
  done_jobs=$((done_jobs + 1))
done <"$TB_DIR/accepted"
# ... and is in every node's job table, done.
table_has_all() {  # I
  "$P2PCTL" --socket "$TB_DIR/n$1/sock" --json jobs | python3 -c '
import json, sys
accepted = set(open(sys.argv[1]).read().split())
table = {j["job_id"]: j["state"] for j in json.load(sys.stdin)["jobs"]}
sys.exit(0 if all(table.get(j) == "done" for j in accepted) else 1)' "$TB_DIR/accepted"
}
for i in $(seq 1 $NODES); do
  tb_wait 60 "node $i's job table has every accepted job, done" table_has_all "$i" ||
    tb_fail "node $i's job table misses accepted jobs"
done
echo "all $done_jobs accepted jobs done and correct, on all $NODES nodes' job tables"
[ "$accepted" -gt 0 ] || tb_fail "no job was accepted"
echo "PASS (chaos: ${DURATION} s, seed $SEED)"
