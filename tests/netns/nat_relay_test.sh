#!/usr/bin/env bash
# Relayed peers (tests/netns/testbed.sh): A and B behind NAT routers find
# themselves unreachable, reserve a relay port on the public peer P and
# announce it; P then reaches them through its relay. A and B punch a
# direct connection to each other where their routers allow it (home:
# EXPECTED_CONNECTION punched) and stay on the relay where they do not
# (symmetric: relayed). A 6-shard job submitted on P completes with the
# right product, its data crossing the relay.
# Usage: nat_relay_test.sh P2PD P2PCTL [home|symmetric] [EXPECTED_CONNECTION]
set -euo pipefail
P2PD="$1" P2PCTL="$2" KIND="${3:-symmetric}" EXPECTED="${4:-relayed}"
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/testbed.sh"
testbed_require
testbed_up "$KIND"

testbed_p2pd p pub --listen 203.0.113.10:7420 --cpu-threads 1
testbed_p2pd a a --listen 0.0.0.0:7420 --bootstrap 203.0.113.10:7420 --cpu-threads 1
testbed_p2pd b b --listen 0.0.0.0:7420 --bootstrap 203.0.113.10:7420 --cpu-threads 1

json_field() {  # NAME COMMAND FIELD: prints FIELD of `p2pctl --json COMMAND`
  tb_ctl "$1" --json "$2" | python3 -c "import json,sys; v=json.load(sys.stdin)$3; print(v if isinstance(v,str) else json.dumps(v))"
}
is() {  # NAME COMMAND FIELD EXPECTED
  [ "$(json_field "$1" "$2" "$3")" = "$4" ]
}
# connection NAME PEER_NAME: how NAME reaches PEER_NAME, from `p2pctl peers`.
connection() {
  local id
  id="$(json_field "$2" status "['node_id']")"
  tb_ctl "$1" --json peers |
    python3 -c "import json,sys; print(next((p['connection'] for p in json.load(sys.stdin)['peers'] if p['node_id']=='$id'), 'absent'))"
}
connected_as() {  # NAME PEER_NAME EXPECTED
  [ "$(connection "$1" "$2")" = "$3" ]
}

fail() {
  echo "FAIL: $*" >&2
  for n in p a b; do
    echo "---- netcheck $n"
    tb_ctl "$n" netcheck || true
    echo "---- peers $n"
    tb_ctl "$n" peers || true
  done
  tb_dump_logs
  exit 1
}

for n in a b; do
  tb_wait 40 "$n is private" is "$n" status "['reachability']" private ||
    fail "$n's reachability: $(json_field "$n" status "['reachability']" || true)"
  tb_wait 30 "$n's relay is connected" is "$n" netcheck "['relay']['state']" connected ||
    fail "$n's relay: $(json_field "$n" netcheck "['relay']" || true)"
  echo "$n: private, relayed: $(json_field "$n" netcheck "['relay']")"
done
# A sees itself at its router's public address (testbed.sh: A's router is .21).
tb_wait 30 "A observes its router's address" sh -c \
  "'$P2PCTL' --socket '$TB_DIR/a/sock' --json status | grep -q '\"203.0.113.21:'" ||
  fail "A's observed addresses: $(json_field a status "['observed_addrs']" || true)"
echo "A: $(json_field a status "['observed_addrs']"), reachability $(json_field a status "['reachability']")"

# P reaches A and B through the relay; A and B reach each other as EXPECTED.
for pair in "p a" "p b"; do
  set -- $pair
  tb_wait 60 "$1 reaches $2 (relayed)" connected_as "$1" "$2" relayed ||
    fail "$1 reaches $2 as '$(connection "$1" "$2" || true)', expected relayed"
done
for pair in "a b" "b a"; do
  set -- $pair
  tb_wait 90 "$1 reaches $2 ($EXPECTED)" connected_as "$1" "$2" "$EXPECTED" ||
    fail "$1 reaches $2 as '$(connection "$1" "$2" || true)', expected $EXPECTED"
done
for pair in "a p" "b p"; do
  set -- $pair
  tb_wait 30 "$1 reaches P directly" connected_as "$1" "$2" direct ||
    fail "$1 reaches P as '$(connection "$1" "$2" || true)', expected direct"
done
if [ "$EXPECTED" = punched ]; then
  # Calls between A and B take the punched connection, not the relay.
  for n in a b; do
    tb_wait 30 "$n calls over its punched connection" sh -c \
      "[ \"\$('$P2PCTL' --socket '$TB_DIR/$n/sock' --json netcheck | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"punching\"][\"direct_calls\"])')\" -gt 0 ]" ||
      fail "$n made no call over its punched connection: $(json_field "$n" netcheck "['punching']" || true)"
    echo "$n's punching: $(json_field "$n" netcheck "['punching']")"
  done
fi
if [ "$EXPECTED" = relayed ]; then
  # Not for want of trying: a whole round of punches failed (each router
  # gives every connection a new port), and A and B are still relayed.
  tb_wait 90 "A has tried a round of punches" sh -c \
    "[ \"\$('$P2PCTL' --socket '$TB_DIR/a/sock' --json netcheck | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"punching\"][\"attempts\"])')\" -ge 3 ]" ||
    fail "A did not try to punch: $(json_field a netcheck "['punching']" || true)"
  [ "$(json_field a netcheck "['punching']['succeeded']")" = 0 ] || fail "a punch through symmetric routers worked"
  connected_as a b relayed || fail "A reaches B as '$(connection a b || true)' after failed punches"
  echo "A's punching: $(json_field a netcheck "['punching']")"
fi
echo "connections: P->A $(connection p a), P->B $(connection p b), A->B $(connection a b), B->A $(connection b a)," \
  "A->P $(connection a p), B->P $(connection b p)"

# A 6-shard job submitted on P: inputs stored in the ring (on A and B too),
# shards run on every worker, results verified by the pool, and C checked
# here against A @ B.
python3 "$HERE/gemm_npy.py" make "$TB_DIR/a.npy" "$TB_DIR/b.npy" 96 64 48 7
tb_wait 30 "P sees 2 peers" sh -c "[ \"\$('$P2PCTL' --socket '$TB_DIR/p/sock' --json peers | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"peers\"]))')\" -ge 2 ]" ||
  fail "P does not know both peers"
if ! "$P2PCTL" --socket "$TB_DIR/p/sock" --timeout 120 --json submit gemm --a "$TB_DIR/a.npy" --b "$TB_DIR/b.npy" \
  --shards 6 --out "$TB_DIR/c.npy" >"$TB_DIR/job.json"; then
  cat "$TB_DIR/job.json" >&2 || true
  fail "the job did not complete"
fi
python3 "$HERE/gemm_npy.py" check "$TB_DIR/a.npy" "$TB_DIR/b.npy" "$TB_DIR/c.npy" || fail "wrong product"
python3 - "$TB_DIR/job.json" "$(json_field p status "['node_id']")" "$(json_field a status "['node_id']")" \
  "$(json_field b status "['node_id']")" <<'PY'
import json, sys
job = json.load(open(sys.argv[1]))
names = {sys.argv[2]: "P", sys.argv[3]: "A", sys.argv[4]: "B"}
ran = {}
for shard in job["shards"]:
    ran.setdefault(names.get(shard["peer"], shard["peer"][:8]), []).append(shard["index"])
print("job %s: %s, %d shards; ran on %s" % (job["job_id"], job["state"], len(job["shards"]),
      ", ".join("%s %s" % (k, v) for k, v in sorted(ran.items()))))
sys.exit(0 if job["state"] == "done" and len(job["shards"]) == 6 else 1)
PY
relayed="$(json_field p netcheck "['relay_service']['bytes_relayed']")"
[ "$relayed" -gt 0 ] || fail "P relayed no bytes"
echo "P relayed $relayed bytes: $(json_field p netcheck "['relay_service']")"
echo "PASS ($KIND routers, $EXPECTED)"
