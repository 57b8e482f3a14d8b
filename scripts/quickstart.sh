#!/usr/bin/env bash
# On a fresh machine: installs the dependencies, builds p2pd, starts a local
# pool of several p2pd on loopback, shows what each node reports, the ring,
# the leader, runs a sample sharded job and checks its output, then stops
# the pool. Exit 0 on success.
#
#   bash scripts/quickstart.sh            # 3 nodes
#   P2PD_NODES=5 bash scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=${P2PD_NODES:-3}
preset=${P2PD_PRESET:-release}
case "$nodes" in ''|*[!0-9]*) echo "quickstart: error: P2PD_NODES must be a number" >&2; exit 2;; esac
[ "$nodes" -ge 1 ] && [ "$nodes" -le 32 ] || { echo "quickstart: error: P2PD_NODES must be 1..32" >&2; exit 2; }

bash scripts/install-deps.sh
echo "== quickstart: building (preset $preset)"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)" --target p2pd p2pctl
P2PD="$PWD/build/$preset/daemon/p2pd"
P2PCTL="$PWD/build/$preset/cli/p2pctl"

work=$(mktemp -d /tmp/p2pd-quickstart.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Polls `p2pctl status` on node $1 until it answers (30 s at most).
wait_ready() {
  local sock="$work/node$1.sock"
  for _ in $(seq 1 300); do
    "$P2PCTL" --socket "$sock" --timeout 2 status >/dev/null 2>&1 && return 0
    kill -0 "${pids[$1]}" 2>/dev/null || { echo "quickstart: error: node $1 exited; its log:" >&2; cat "$work/node$1.log" >&2; return 1; }
    sleep 0.1
  done
  echo "quickstart: error: node $1 did not answer within 30 s" >&2
  return 1
}

echo "== quickstart: starting $nodes p2pd on loopback in $work"
first_addr=""
for i in $(seq 0 $((nodes - 1))); do
  args=(--config /dev/null --listen 127.0.0.1:0 --control-socket "$work/node$i.sock"
        --state-dir "$work/node$i" --executor auto --log-level info)
  [ -n "$first_addr" ] && args+=(--bootstrap "$first_addr")
  "$P2PD" "${args[@]}" >"$work/node$i.log" 2>&1 &
  pids+=($!)
  wait_ready "$i"
  if [ -z "$first_addr" ]; then
    first_addr=$("$P2PCTL" --socket "$work/node0.sock" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen"])')
  fi
done

for i in $(seq 0 $((nodes - 1))); do
  echo
  echo "== node $i: p2pctl --socket $work/node$i.sock status"
  "$P2PCTL" --socket "$work/node$i.sock" status
done
echo
echo "== node 0 as JSON (p2pctl --json status)"
"$P2PCTL" --socket "$work/node0.sock" --json status

# The ring orders itself within a few stabilize rounds (0.5 s each): wait
# until every node's successor is a different node, 30 s at most.
echo
echo "== quickstart: waiting for the Chord ring to close"
for _ in $(seq 1 300); do
  closed=1
  for i in $(seq 0 $((nodes - 1))); do
    "$P2PCTL" --socket "$work/node$i.sock" --json ring | python3 -c '
import json, sys
r = json.load(sys.stdin)
sys.exit(0 if r["predecessor"] and r["successors"][0]["node_id"] != r["self"]["node_id"] else 1)' || closed=0
  done
  [ "$closed" = 1 ] && break
  sleep 0.1
done
[ "$closed" = 1 ] || { echo "quickstart: error: the ring did not close within 30 s" >&2; exit 1; }
echo
echo "== node 0: p2pctl peers"
"$P2PCTL" --socket "$work/node0.sock" peers
echo
echo "== node 0: p2pctl ring"
"$P2PCTL" --socket "$work/node0.sock" ring
echo
echo "== the key-value store: put on node 0, lookup and get on node $((nodes - 1))"
"$P2PCTL" --socket "$work/node0.sock" put greeting "hello from node 0"
"$P2PCTL" --socket "$work/node$((nodes - 1)).sock" lookup greeting
echo -n "get greeting: "
"$P2PCTL" --socket "$work/node$((nodes - 1)).sock" get greeting
echo

echo
echo "== the Raft leader (node 0's view)"
"$P2PCTL" --socket "$work/node0.sock" leader

echo
echo "== a sample sharded job: C = A x B, 256x128 by 128x64, in $nodes shards, submitted on node $((nodes - 1))"
python3 - "$work" <<'PY'
import random, struct, sys
def save(path, rows, cols, seed):
    rng = random.Random(seed)
    d = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, cols)
    h = d + " " * (64 - (10 + len(d) + 1) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode())
        f.write(struct.pack("<%df" % (rows * cols), *[rng.uniform(-1, 1) for _ in range(rows * cols)]))
save(sys.argv[1] + "/a.npy", 256, 128, 1)
save(sys.argv[1] + "/b.npy", 128, 64, 2)
PY
"$P2PCTL" --socket "$work/node$((nodes - 1)).sock" submit gemm --a "$work/a.npy" --b "$work/b.npy" \
  --shards "$nodes" --out "$work/c.npy"
echo
echo "== node 0: p2pctl jobs"
"$P2PCTL" --socket "$work/node0.sock" jobs
python3 - "$work" <<'PY'
import struct, sys
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<H", b[8:10])[0]
    shape = eval(b[10:10 + n].decode())["shape"]
    return shape, struct.unpack("<%df" % (shape[0] * shape[1]), b[10 + n:])
(m, k), a = load(sys.argv[1] + "/a.npy")
(_, n), b = load(sys.argv[1] + "/b.npy")
shape, c = load(sys.argv[1] + "/c.npy")
assert shape == (m, n), shape
for i, j in [(0, 0), (m // 2, n // 3), (m - 1, n - 1)]:
    exact = sum(a[i * k + t] * b[t * n + j] for t in range(k))
    assert abs(exact - c[i * n + j]) < 1e-3, (i, j, exact, c[i * n + j])
print("quickstart: the job's output matches A x B computed here")
PY
echo
job_id=$("$P2PCTL" --socket "$work/node0.sock" --json jobs | python3 -c 'import json, sys; print(json.load(sys.stdin)["jobs"][0]["job_id"])')
echo "== node 0: p2pctl trace --job ${job_id:0:8} (the job's causal trace: Lamport order, clocks per host)"
"$P2PCTL" --socket "$work/node0.sock" trace --job "${job_id:0:8}"

echo
echo "== quickstart: stopping the pool (SIGTERM)"
for i in "${!pids[@]}"; do
  kill -TERM "${pids[$i]}"
  if ! wait "${pids[$i]}"; then
    echo "quickstart: error: node $i did not exit cleanly; its log:" >&2
    cat "$work/node$i.log" >&2
    exit 1
  fi
done
pids=()
echo "== quickstart: done: $nodes nodes started, answered and stopped cleanly"
